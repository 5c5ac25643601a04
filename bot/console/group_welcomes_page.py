"""Customer-group welcome templates and channels' group QR codes (operators
only): the templates from the configuration file (read-only here: the file is their
home), those made here (added, edited, deleted), WeCom's answer for each, and the join
way of each channel with groups. Saving queues the change for WeCom through the outbox,
as the file's templates are; WeCom keeps at most 100 templates per corp."""

from __future__ import annotations

import json

from aiohttp import web

from bot.console.keys import operators_only
from bot.console.render import render
from bot.settings.wecom import WELCOME_ID, welcome_problems
from bot.shared.keys import SESSIONS
from bot.shared.member_edits import wake_delivery
from storage.group_welcomes import (
    MAX_WELCOMES,
    WelcomeContent,
    delete_welcome,
    list_join_ways,
    list_welcomes,
    save_welcome,
    welcome_by_key,
)
from storage.models import utcnow

FIELDS = ("key", "text", "image_url", "link_title", "link_url", "link_desc", "link_picurl")
PAGE = "/admin/group-welcomes"
STATUSES = {"pending": "等待同步", "synced": "已同步", "failed": "同步失败", "deleting": "正在删除"}
NOTICES = {"saved": "已保存，正在同步到企业微信。", "deleted": "已删除，正在从企业微信删掉。"}
FULL = "企业微信最多保存 100 条入群欢迎语素材，请先删掉一条"


def add_routes(console: web.Application) -> None:
    console.router.add_get("/group-welcomes", page)
    console.router.add_post("/group-welcomes", create)
    console.router.add_get("/group-welcomes/{key}", edit_page)
    console.router.add_post("/group-welcomes/{key}", update)
    console.router.add_post("/group-welcomes/{key}/delete", delete)


def form_values(raw: dict[str, str] | None = None) -> dict[str, str]:
    raw = raw or {}
    values = {name: str(raw.get(name, "")).strip()[:4000] for name in FIELDS}
    values["notify"] = "on" if raw.get("notify", "on" if not raw else "") == "on" else ""
    return values


def content_of(values: dict[str, str]) -> WelcomeContent:
    def given(name: str) -> str | None:
        return values[name] or None
    return WelcomeContent(values["text"], given("image_url"), given("link_title"), given("link_url"),
                          given("link_desc"), given("link_picurl"), values["notify"] == "on")


def problems_of(values: dict[str, str], new: bool) -> list[str]:
    content = content_of(values)
    problems = welcome_problems(content.text, content.image_url, content.link_title, content.link_url,
                                content.link_desc, content.link_picurl)
    if new and not WELCOME_ID.fullmatch(values["key"]):
        problems.insert(0, "key: required: up to 64 characters, no spaces, \":\" or \"/\"")
    return problems


async def _listing(request: web.Request, values: dict[str, str], problems: list[str], status: int = 200,
                   editing: str | None = None) -> web.Response:
    async with request.config_dict[SESSIONS]() as session:
        welcomes = await list_welcomes(session)
        ways = await list_join_ways(session)
    return render(request, "group_welcomes.html", http_status=status, welcomes=welcomes, ways=ways, values=values,
                  problems=problems, editing=editing, statuses=STATUSES, limit=MAX_WELCOMES, json=json,
                  notice=NOTICES.get(request.query.get("done", "")))


async def page(request: web.Request) -> web.Response:
    operators_only(request)
    return await _listing(request, form_values(), [])


async def edit_page(request: web.Request) -> web.Response:
    operators_only(request)
    async with request.config_dict[SESSIONS]() as session:
        row = await welcome_by_key(session, request.match_info["key"])
    if row is None or row.source != "console":
        raise web.HTTPNotFound(text="no such template made in the console / 没有这条（或它来自配置文件）")
    values = form_values({"key": row.key, "text": row.text, "image_url": row.image_url or "",
                          "link_title": row.link_title or "", "link_url": row.link_url or "",
                          "link_desc": row.link_desc or "", "link_picurl": row.link_picurl or "",
                          "notify": "on" if row.notify else ""})
    return await _listing(request, values, [], editing=row.key)


async def create(request: web.Request) -> web.Response:
    operators_only(request)
    values = form_values({k: str(v) for k, v in (await request.post()).items()})
    return await _save(request, values, None)


async def update(request: web.Request) -> web.Response:
    operators_only(request)
    values = form_values({k: str(v) for k, v in (await request.post()).items()}) | {"key": request.match_info["key"]}
    return await _save(request, values, request.match_info["key"])


async def _save(request: web.Request, values: dict[str, str], editing: str | None) -> web.Response:
    if problems := problems_of(values, editing is None):
        return await _listing(request, values, problems, 400, editing)
    async with request.config_dict[SESSIONS]() as session, session.begin():
        existing = await welcome_by_key(session, values["key"])
        if editing is None and existing is not None:
            problem: str | None = f'key: "{values["key"]}" is taken'
        elif existing is not None and existing.source != "console":
            problem = "这条来自配置文件，请在配置文件里修改"
        else:
            saved = await save_welcome(session, values["key"], content_of(values), "console", utcnow())
            problem = None if saved is not None else FULL
    if problem is not None:
        return await _listing(request, values, [problem], 409 if problem == FULL else 400, editing)
    wake_delivery(request)
    raise web.HTTPFound(f"{PAGE}?done=saved")


async def delete(request: web.Request) -> web.Response:
    operators_only(request)
    key = request.match_info["key"]
    async with request.config_dict[SESSIONS]() as session, session.begin():
        row = await welcome_by_key(session, key)
        if row is None or row.source != "console":
            raise web.HTTPNotFound(text="no such template made in the console / 没有这条（或它来自配置文件）")
        await delete_welcome(session, key, utcnow())
    wake_delivery(request)
    raise web.HTTPFound(f"{PAGE}?done=deleted")
