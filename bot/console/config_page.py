"""Settings operators edit (operators only): each configuration document with its version
history, message texts with a live preview for a chosen member, and rollback.

A change is checked exactly as `siyu check` checks the file (the section's types, then
every template rendered, unknown tags, cron lines) against the configuration in force with
this one document replaced, and only then stored as a new version. This process applies
it at once; every other process within a few seconds (`bot.shared.live_config`).
"""

from __future__ import annotations

import tomllib
from typing import Any
from urllib.parse import quote, urlencode

import tomli_w
from aiohttp import web

from bot.console.config_store import NOTICES, held_bodies, problems_with, spoken, store_change
from bot.console.config_words import VARIABLES
from bot.console.form_page import form_editor, save_form
from bot.console.keys import operators_only
from bot.console.render import render
from bot.console.section_forms import FORMS
from bot.settings.checks import SAMPLE_MEMBER, sample_variables
from bot.settings.documents import DOCUMENTS, document_body, without_none
from bot.shared.keys import SESSIONS
from bot.shared.live_config import live
from content_templates.renderer import SHIPPED, RenderError
from handlers.contact_events import CHANNEL_CODE
from storage.config_docs import current_documents, history, version_of
from storage.preview_members import preview_member, preview_members

SECTIONS = tuple(name for name in DOCUMENTS if name != "templates")
TEXTS = "templates"
WELCOME = "persona/welcome.txt.j2"  # what a channel's own welcome starts from


def add_routes(console: web.Application) -> None:
    console.router.add_get("/settings", settings_home)
    console.router.add_get("/settings/texts", text_editor)
    console.router.add_post("/settings/texts", save_text)
    console.router.add_post("/settings/texts/preview", preview_text)
    console.router.add_post("/settings/texts/rollback", roll_back_text)
    console.router.add_get("/settings/{name}", section_editor)
    console.router.add_post("/settings/{name}", save_section)
    console.router.add_post("/settings/{name}/rollback", roll_back_section)


def text_path(name: str, **query: str) -> str:
    return "/admin/settings/texts?" + urlencode({"name": name, **query})


# -- the list ---------------------------------------------------------------------------------

async def settings_home(request: web.Request) -> web.Response:
    operators_only(request)
    async with request.config_dict[SESSIONS]() as session:
        documents = await current_documents(session)
    renderer = live(request).renderer
    texts = live(request).settings.templates.texts
    wecom = live(request).settings.platforms.wecom
    channels = [f"persona/welcome/{code}.txt.j2" for code in (wecom.channels if wecom else {})
                if CHANNEL_CODE.fullmatch(code)]  # a welcome per channel code, written here
    names = sorted(set(_shipped_names()) | set(texts) | set(channels))
    return render(request, "settings.html", sections=[(n, DOCUMENTS[n], documents.get(n)) for n in SECTIONS],
                  texts=[(n, n in texts) for n in names], text_path=text_path, texts_doc=documents.get(TEXTS),
                  has_source=lambda n: renderer.source(n) is not None, zone=live(request).settings.zone)


def _shipped_names() -> list[str]:
    return [str(p.relative_to(SHIPPED)) for p in SHIPPED.rglob("*.j2")]


# -- one section as TOML ----------------------------------------------------------------------

def _section_name(request: web.Request) -> str:
    name = request.match_info["name"]
    if name not in SECTIONS:
        raise web.HTTPNotFound(text="no such settings section / 没有这一项设置")
    return name


def section_toml(name: str, body: Any) -> str:
    return tomli_w.dumps({name: without_none(body or {})}, multiline_strings=True)


async def section_editor(request: web.Request) -> web.Response:
    operators_only(request)
    name = _section_name(request)
    if name in FORMS and request.query.get("mode") != "toml":
        return await form_editor(request, name)
    body = document_body(live(request).settings, name)
    return await _section_page(request, name, section_toml(name, body), [])


async def _section_page(request: web.Request, name: str, text: str, problems: list[str],
                        http_status: int = 200) -> web.Response:
    async with request.config_dict[SESSIONS]() as session:
        versions = await history(session, name)
    notice = request.query.get("notice", "")
    return render(request, "settings_section.html", http_status=http_status, name=name, label=DOCUMENTS[name],
                  text=text, problems=spoken(request, problems), versions=versions, has_form=name in FORMS,
                  notice=NOTICES.get(notice), notice_fields=dict(request.query), zone=live(request).settings.zone)


def parse_section(name: str, text: str) -> tuple[Any, list[str]]:
    """The section's body from the TOML typed in the editor (with or without its header)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return None, [f"{name}: not valid TOML: {error}"]
    if set(raw) == {name} and isinstance(raw[name], dict):
        raw = raw[name]
    return raw, []


async def save_section(request: web.Request) -> web.StreamResponse:
    operators_only(request)
    name = _section_name(request)
    form = await request.post()
    if name in FORMS and "toml" not in form:
        return await save_form(request, name, form)
    text = str(form.get("toml", ""))
    body, problems = parse_section(name, text)
    if not problems:
        _settings, problems = problems_with(live(request).base, await held_bodies(request) | {name: body})
    if problems:
        return await _section_page(request, name, text, problems, http_status=400)
    version = await store_change(request, name, body, "console", str(form.get("note", "")))
    query = {"notice": "saved", "version": str(version)} if version else {"notice": "unchanged"}
    if name in FORMS:
        query["mode"] = "toml"  # the expert stays in the TOML editor
    raise web.HTTPFound(f"/admin/settings/{name}?{urlencode(query)}")


async def roll_back_section(request: web.Request) -> web.StreamResponse:
    operators_only(request)
    name = _section_name(request)
    form = await request.post()
    old = await _version(request, name, str(form.get("version", "")))
    _settings, problems = problems_with(live(request).base, await held_bodies(request) | {name: old.body})
    if problems:  # valid once, but not with what else is in force now
        return await _section_page(request, name, section_toml(name, old.body), problems, http_status=400)
    version = await store_change(request, name, old.body, "rollback", f"v{old.version}")
    query = {"notice": "rolled_back", "version": str(version), "from_version": str(old.version)} if version \
        else {"notice": "unchanged"}
    raise web.HTTPFound(f"/admin/settings/{name}?{urlencode(query)}")


async def _version(request: web.Request, name: str, number: str) -> Any:
    if not number.isdigit():
        raise web.HTTPBadRequest(text="which version? / 请选择版本")
    async with request.config_dict[SESSIONS]() as session:
        old = await version_of(session, name, int(number))
    if old is None:
        raise web.HTTPNotFound(text="no such version / 没有这个版本")
    return old


# -- message texts ----------------------------------------------------------------------------

def _text_name(raw: object) -> str:
    name = str(raw or "").strip()
    if not name or len(name) > 128 or ".." in name or name.startswith("/") or not name.endswith(".j2"):
        raise web.HTTPBadRequest(text="a template name such as calendar/new_season.txt.j2 / 请给出模板名")
    return name


async def text_editor(request: web.Request) -> web.Response:
    operators_only(request)
    name = _text_name(request.query.get("name"))
    text = live(request).renderer.source(name) or (live(request).renderer.source(WELCOME) or "" if
                                                    name.startswith("persona/welcome/") else "")
    return await _text_page(request, name, text, [], request.query.get("member", ""))


async def _text_page(request: web.Request, name: str, text: str, problems: list[str], member: str,
                     http_status: int = 200) -> web.Response:
    async with request.config_dict[SESSIONS]() as session:
        members = await preview_members(session)
        versions = text_versions(await history(session, TEXTS, limit=500), name)
    shown = _render(request, text, await _member(request, member))
    notice = request.query.get("notice", "")
    return render(request, "settings_text.html", http_status=http_status, name=name, text=text,
                  problems=spoken(request, problems), members=members, member=member, variables=VARIABLES,
                  preview=shown[0], preview_problems=spoken(request, shown[1]), versions=versions,
                  edited=name in live(request).settings.templates.texts, notice=NOTICES.get(notice),
                  notice_fields=dict(request.query), zone=live(request).settings.zone)


def text_versions(versions: list[Any], name: str) -> list[Any]:
    """The versions (newest first) in which text `name` changed; one without it stands
    for the default text (the template file)."""
    changed, before = [], object()
    for v in reversed(versions):
        now = (v.body or {}).get(name)
        if now != before:
            changed.append(v)
        before = now
    return changed[::-1]


async def _member(request: web.Request, member: str) -> tuple[str | None, str | None, str | None]:
    if member.isdigit():
        async with request.config_dict[SESSIONS]() as session:
            found = await preview_member(session, int(member))
        if found is not None:
            return found.name, found.store, found.owner
    return SAMPLE_MEMBER


def _render(request: web.Request, text: str, member: tuple[str | None, str | None, str | None]) -> tuple[str, list[str]]:
    now = live(request)
    variables = sample_variables(now.handlers.persona.template_variables(), *member)
    try:
        return now.renderer.render_text(text, variables), []
    except RenderError as error:
        return "", [f"text: {error}"]


async def preview_text(request: web.Request) -> web.Response:
    """A draft rendered for a member (JSON {text, member}): the text, or its problems."""
    operators_only(request)
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="a JSON object is expected") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="a JSON object is expected")
    text, problems = _render(request, str(body.get("text", ""))[:20000], await _member(request, str(body.get("member", ""))))
    return web.json_response({"ok": not problems, "text": text,
                              "problems": [p.text for p in spoken(request, problems)]})


async def save_text(request: web.Request) -> web.StreamResponse:
    operators_only(request)
    form = await request.post()
    name, text = _text_name(form.get("name")), str(form.get("text", "")).replace("\r\n", "\n")
    return await _store_text(request, name, text, str(form.get("member", "")), "console")


async def _store_text(request: web.Request, name: str, text: str | None, member: str, source: str,
                      from_version: int | None = None) -> web.StreamResponse:
    """Save `text` as message text `name` (None: back to the template file's text)."""
    bodies = await held_bodies(request)
    texts = {n: t for n, t in dict(bodies.get(TEXTS) or {}).items() if n != name}
    if text is not None:
        texts[name] = text
    problems = _render(request, text, await _member(request, member))[1] if text is not None else []
    if not problems:
        _settings, problems = problems_with(live(request).base, bodies | {TEXTS: texts})
    if problems:
        return await _text_page(request, name, text or "", problems, member, http_status=400)
    version = await store_change(request, TEXTS, texts, source, name)
    query: dict[str, str] = {"notice": "unchanged"}
    if version:
        query = {"notice": "rolled_back" if from_version else "saved", "version": str(version)}
        if from_version:
            query["from_version"] = str(from_version)
    raise web.HTTPFound(text_path(name, member=member, **query))


async def roll_back_text(request: web.Request) -> web.StreamResponse:
    operators_only(request)
    form = await request.post()
    name = _text_name(form.get("name"))
    old = await _version(request, TEXTS, str(form.get("version", "")))
    return await _store_text(request, name, (old.body or {}).get(name), str(form.get("member", "")), "rollback",
                             old.version)


def quoted(name: str) -> str:
    return quote(name, safe="")
