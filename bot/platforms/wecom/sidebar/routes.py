"""The sidebar's paths (under `platforms.wecom.sidebar.path`, default /wecom/sidebar):

- `GET {path}`: the page. Without a session it starts WeCom's OAuth2 (a state cookie
  against forged returns) and, back with a code, asks WeCom who it was: a member of the
  corp who is an active staff member here gets a sidebar session; anyone else a page
  saying why. The page comes with the JS-SDK signed for its own URL.
- `GET {path}/jssdk?url=[&stale=1]`: signatures for another URL of the sidebar (WeCom
  added a query, or the page was reached by another address), or with fresh tickets
  when the client refused the page's (WeCom may invalidate a ticket early).
- `GET {path}/api/contact/{external_userid}`, `GET {path}/api/group/{chat_id}`: the cards.
- `POST {path}/api/tasks/{id}/done|skip`, `POST {path}/api/members/{id}/tags[/remove]`.

Staff are known only from WeCom's answer to the code, never from what the page sends.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bot.platforms.wecom import jssdk
from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.errors import WeComApiError, WeComRateLimited, WeComTransportError
from bot.platforms.wecom.oauth import INVALID_CODE, authorize_url, plausible_code, visitor_of
from bot.platforms.wecom.sidebar import card
from bot.platforms.wecom.sidebar.session import (
    COOKIE,
    CSRF_HEADER,
    STATE_COOKIE,
    csrf_matches,
    csrf_token,
    new_session,
    read_session,
)
from bot.platforms.wecom.tickets import Tickets
from bot.settings.model import Settings, WeComSettings
from bot.shared import strict_json
from bot.shared.access import Viewer, staff_viewer
from bot.shared.keys import SESSIONS
from bot.shared.live_config import live
from bot.shared.member_edits import add_tag_by_hand, remove_tag_by_hand, scheme_and_layer_labels, wake_delivery
from bot.shared.rule_words import rule_in_chinese
from bot.shared.params import path_id
from storage.models import Member, StaffTask, utcnow
from storage.tasks import close_task

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
JS_APIS = ["getContext", "getCurExternalContact", "getCurExternalChat", "sendChatMessage"]
STATE_SECONDS = 600
ApiError = WeComApiError | WeComRateLimited | WeComTransportError


@dataclass(slots=True)
class Sidebar:
    """Everything the sidebar's handlers share, built once for the app."""

    wecom: WeComSettings
    public_base: str
    key: bytes
    labels: card.Labels
    client: WeComClient | None = None  # set when the app starts
    tickets: Tickets | None = None

    @property
    def path(self) -> str:
        return self.wecom.sidebar.path

    @property
    def secure(self) -> bool:
        return self.public_base.startswith("https://")

    def public_url(self, path_qs: str) -> str:
        return self.public_base + path_qs


SIDEBAR = web.AppKey("wecom_sidebar", Sidebar)
VIEWER = web.RequestKey("sidebar_viewer", Viewer)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_pages = Environment(loader=FileSystemLoader(HERE), autoescape=select_autoescape(["html"]), auto_reload=False,
                     undefined=StrictUndefined)
# Inlined into the page: one request to first content, nothing else to fetch.
_ASSETS = {f"sidebar_{kind}": (HERE / f"sidebar.{kind}").read_text(encoding="utf-8") for kind in ("css", "js")}


def public_base(settings: Settings) -> str:
    wecom = settings.platforms.wecom
    assert wecom is not None
    return (wecom.sidebar.public_url or settings.console.public_url
            or f"http://{settings.server.host}:{settings.server.port}").rstrip("/")


def add_sidebar_routes(app: web.Application, settings: Settings, key: bytes) -> Sidebar:
    wecom = settings.platforms.wecom
    assert wecom is not None
    sidebar = Sidebar(wecom, public_base(settings), key, card.Labels(*scheme_and_layer_labels(settings.layers.schemes)))
    app[SIDEBAR] = sidebar
    path = wecom.sidebar.path
    app.router.add_get(path, page)
    app.router.add_get(path + "/jssdk", _signed_in(signatures))
    app.router.add_get(path + "/api/contact/{external_userid}", _signed_in(contact))
    app.router.add_get(path + "/api/group/{chat_id}", _signed_in(group))
    app.router.add_post(path + "/api/tasks/{id:\\d+}/{action:done|skip}", _signed_in(close))
    app.router.add_post(path + "/api/members/{id:\\d+}/tags", _signed_in(add_tag))
    app.router.add_post(path + "/api/members/{id:\\d+}/tags/remove", _signed_in(remove_tag))
    return sidebar


# -- signing in --------------------------------------------------------------------------

async def _viewer(request: web.Request, userid: str) -> Viewer | None:
    async with request.app[SESSIONS]() as session:
        return await staff_viewer(session, f"sidebar:{userid}", userid)


def _signed_in(handler: Handler) -> Handler:
    """An API path: a live session of a still-active staff member, and for POSTs the
    session's token in the header."""
    async def checked(request: web.Request) -> web.StreamResponse:
        sidebar = request.app[SIDEBAR]
        cookie = request.cookies.get(COOKIE, "")
        session = read_session(sidebar.key, cookie)
        viewer = await _viewer(request, session.userid) if session else None
        if viewer is None:
            return _json({"error": "signed_out", "message": "登录已过期，请重新打开侧边栏"}, 401)
        if request.method == "POST" and not csrf_matches(sidebar.key, cookie, request.headers.get(CSRF_HEADER, "")):
            return _json({"error": "forbidden", "message": "页面已过期，请重新打开侧边栏"}, 403)
        request[VIEWER] = viewer
        return await handler(request)
    return checked


async def page(request: web.Request) -> web.StreamResponse:
    sidebar = request.app[SIDEBAR]
    cookie = request.cookies.get(COOKIE, "")
    session = read_session(sidebar.key, cookie)
    viewer = await _viewer(request, session.userid) if session else None
    if "code" in request.query:
        if viewer is not None:  # signed in already (back button, a reload): the page without the code
            raise web.HTTPFound(_clean_path_qs(request))
        return await _came_back(request, sidebar)
    if viewer is None:
        raise _to_wecom(request, sidebar)
    return await _render(request, sidebar, viewer, cookie)


def _clean_path_qs(request: web.Request) -> str:
    """The page's own path and query, without WeCom's code and state."""
    kept = [(k, v) for k, v in request.query.items() if k not in ("code", "state")]
    return request.path + (f"?{urlencode(kept)}" if kept else "")


def _to_wecom(request: web.Request, sidebar: Sidebar) -> web.HTTPFound:
    state = secrets.token_hex(16)
    target = authorize_url(sidebar.wecom.sidebar.oauth_base, sidebar.wecom.corp_id, sidebar.wecom.agent_id,
                           sidebar.public_url(_clean_path_qs(request)), state)
    answer = web.HTTPFound(target)
    answer.set_cookie(STATE_COOKIE, state, max_age=STATE_SECONDS, path=sidebar.path, httponly=True,
                      samesite="Lax", secure=sidebar.secure)
    return answer


async def _came_back(request: web.Request, sidebar: Sidebar) -> web.StreamResponse:
    code, state = request.query.get("code", ""), request.query.get("state", "")
    expected = request.cookies.get(STATE_COOKIE, "")
    if not expected or not secrets.compare_digest(state.encode(), expected.encode()) or not plausible_code(code):
        return _notice(sidebar, 400, "请从企业微信里重新打开侧边栏", "这次登录不是从这里发起的，或已过期。")
    assert sidebar.client is not None
    try:
        visitor = await visitor_of(sidebar.client, code)
    except WeComApiError as error:
        log.warning("sidebar: WeCom refused the sign-in code (errcode %s)", error.errcode)
        if error.errcode == INVALID_CODE:  # used or expired (a reload): start again
            raise web.HTTPFound(_clean_path_qs(request)) from None
        return _notice(sidebar, 502, "企业微信暂时没能确认你的身份", f"错误码 {error.errcode}，请稍后重新打开。")
    except (WeComTransportError, WeComRateLimited):
        return _notice(sidebar, 503, "企业微信暂时连不上", "请稍后重新打开侧边栏。")
    if visitor.userid is None:
        return _notice(sidebar, 403, "侧边栏只给本企业的员工使用", "请用你的企业微信账号打开。")
    if await _viewer(request, visitor.userid) is None:
        log.info("sidebar: %s is not an active staff member here", visitor.userid)
        return _notice(sidebar, 403, "你还不是 siyu 里的店员", "请联系运营把你加为店员（或确认你没有被设为离职）。")
    minutes = sidebar.wecom.sidebar.session_minutes
    answer = web.HTTPFound(_clean_path_qs(request))
    answer.set_cookie(COOKIE, new_session(visitor.userid, minutes).cookie(sidebar.key), max_age=minutes * 60,
                      path=sidebar.path, httponly=True, samesite="Lax", secure=sidebar.secure)
    answer.del_cookie(STATE_COOKIE, path=sidebar.path)
    log.info("sidebar: %s signed in", visitor.userid)
    raise answer


# -- the page ----------------------------------------------------------------------------

async def _signed(sidebar: Sidebar, url: str, stale: bool = False) -> dict[str, Any] | None:
    """wx.config and wx.agentConfig for `url`, or None when WeCom gives no ticket now.
    `stale`: the client refused the last signatures, so fetch the tickets anew."""
    assert sidebar.tickets is not None
    now = int(time.time())
    try:
        if stale:
            for kind in ("jsapi", "agent_config"):
                await sidebar.tickets.forget(kind, await sidebar.tickets.ticket(kind))
        corp, app = await sidebar.tickets.ticket("jsapi"), await sidebar.tickets.ticket("agent_config")
    except (WeComApiError, WeComRateLimited, WeComTransportError) as error:
        log.warning("sidebar: no JS-SDK ticket: %s", error)
        return None
    return {"url": jssdk.page_url(url), "config": jssdk.sign(corp, url, now).as_json(),
            "agentConfig": jssdk.sign(app, url, now).as_json()}


def _csp(nonce: str, sdk_urls: tuple[str, ...]) -> str:
    hosts = " ".join(sorted({f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in sdk_urls}))
    return (f"default-src 'none'; script-src 'nonce-{nonce}' {hosts}; style-src 'nonce-{nonce}'; "
            "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'")


async def _render(request: web.Request, sidebar: Sidebar, viewer: Viewer, cookie: str) -> web.Response:
    url = sidebar.public_url(request.path_qs)
    boot = {
        "corpId": sidebar.wecom.corp_id, "agentId": sidebar.wecom.agent_id, "jsApiList": JS_APIS,
        "api": sidebar.path, "token": csrf_token(sidebar.key, cookie), "staff": viewer.name,
        "sdk": list(sidebar.wecom.sidebar.sdk_urls), "signed": await _signed(sidebar, url),
    }
    nonce = secrets.token_urlsafe(16)
    html = _pages.get_template("page.html").render(boot=boot, nonce=nonce, staff=viewer.name, **_ASSETS)
    response = web.Response(text=html, content_type="text/html", headers={
        "Content-Security-Policy": _csp(nonce, sidebar.wecom.sidebar.sdk_urls), "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
    })
    response.enable_compression()  # a third of the bytes on a phone's connection
    return response


def _notice(sidebar: Sidebar, status: int, title: str, detail: str) -> web.Response:
    html = _pages.get_template("notice.html").render(title=title, detail=detail, retry=sidebar.path)
    return web.Response(status=status, text=html, content_type="text/html",
                        headers={"Cache-Control": "no-store", "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(data, ensure_ascii=False, separators=(",", ":")),
                        content_type="application/json", headers={"Cache-Control": "no-store"})


async def signatures(request: web.Request) -> web.Response:
    sidebar = request.app[SIDEBAR]
    url = request.query.get("url", "")
    if not jssdk.page_url(url).startswith(sidebar.public_url(sidebar.path)):
        return _json({"error": "bad_url", "message": "只为侧边栏自己的地址签名"}, 400)
    signed = await _signed(sidebar, url, stale=request.query.get("stale") == "1")
    return _json(signed) if signed else _json({"error": "unavailable", "message": "企业微信暂时不可用"}, 503)


# -- the cards and what staff do on them ---------------------------------------------------

def _today(request: web.Request) -> tuple[Any, Any]:
    zone = live(request).settings.zone
    return zone, datetime.now(zone).date()


NOT_FOUND = {"error": "not_found", "message": "没有找到这位客户，或这位客户不由你服务"}


async def contact(request: web.Request) -> web.Response:
    sidebar, viewer = request.app[SIDEBAR], request[VIEWER]
    zone, today = _today(request)
    async with request.app[SESSIONS]() as session:
        member = await card.member_in_chat(session, viewer, request.match_info["external_userid"])
        if member is None:
            return _json(NOT_FOUND, 404)
        settings = live(request).settings
        found = await card.contact_card(session, viewer, member, sidebar.labels, zone, today,
                                        sidebar.wecom.sidebar.messages, settings.outcomes.ltv_horizon_days,
                                        {rule.id: rule_in_chinese(rule) for rule in settings.tags.rules})
    return _json(found)


async def group(request: web.Request) -> web.Response:
    sidebar, viewer = request.app[SIDEBAR], request[VIEWER]
    async with request.app[SESSIONS]() as session:
        found = await card.group_card(session, viewer, request.match_info["chat_id"], sidebar.labels)
    if found is None:
        return _json({"error": "not_found", "message": "siyu 还不认识这个群"}, 404)
    return _json(found)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = strict_json.loads(await request.read())  # NaN, lone surrogates, NUL, deep nesting: refused
    except strict_json.BadJson:
        raise web.HTTPBadRequest(text='{"error":"bad_json","message":"请求不是 JSON"}', content_type="application/json") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text='{"error":"bad_json","message":"请求不是 JSON 对象"}', content_type="application/json")
    return data


async def close(request: web.Request) -> web.Response:
    viewer, action = request[VIEWER], request.match_info["action"]
    note = str((await _body(request)).get("note") or "").strip()[:500]
    if action == "skip" and not note:
        return _json({"error": "reason_needed", "message": "跳过需要写原因"}, 400)
    async with request.app[SESSIONS]() as session, session.begin():
        task = await session.get(StaffTask, path_id(request.match_info["id"]))
        if task is None or not await viewer.may_act_on_task(session, task):
            return _json({"error": "not_found", "message": "没有这个任务，或它不是你的"}, 404)
        if task.status != "open":
            return _json({"error": "closed", "message": "这个任务已经处理过了", "status": task.status}, 409)
        await close_task(session, task, "done" if action == "done" else "skipped", note or None, utcnow(),
                         live(request).settings.outcomes.scheme)
    return _json({"id": task.id, "status": task.status})


async def _member(request: web.Request, session: Any) -> Member | None:
    member = await session.get(Member, path_id(request.match_info["id"]))
    return member if member is not None and request[VIEWER].may_read_member(member) else None


async def add_tag(request: web.Request) -> web.Response:
    async def add(session: Any, member_id: int, name: str, group: str) -> tuple[str | None, bool]:
        return await add_tag_by_hand(session, live(request).handlers, request[VIEWER], member_id, name, group, utcnow())
    return await _edit_tags(request, add)


async def remove_tag(request: web.Request) -> web.Response:
    async def remove(session: Any, member_id: int, name: str, group: str) -> tuple[str | None, bool]:
        return None, await remove_tag_by_hand(session, live(request).handlers, member_id, name, group, utcnow())
    return await _edit_tags(request, remove)


async def _edit_tags(
    request: web.Request, edit: Callable[[Any, int, str, str], Awaitable[tuple[str | None, bool]]]
) -> web.Response:
    """A tag edit on a member this viewer may read: (a problem or None, whether synced)."""
    data = await _body(request)
    async with request.app[SESSIONS]() as session, session.begin():
        member = await _member(request, session)
        if member is None or member.id is None:
            return _json(NOT_FOUND, 404)
        problem, synced = await edit(session, member.id, str(data.get("name") or ""), str(data.get("group") or ""))
    if problem is not None:
        return _json({"error": "bad_tag", "message": problem}, 400)
    if synced:
        wake_delivery(request)
    return _json({"ok": True, "synced": synced})
