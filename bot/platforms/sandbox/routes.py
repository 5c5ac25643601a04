"""The sandbox platform: a chat page and a JSON endpoint that stand in for a phone.

It goes through the same path as every real platform — update, inbox before answer,
dispatcher, outbox, delivery — so what works here works there.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from bot.platforms.sandbox.hub import SANDBOX_HUB, Watched, staff_key
from bot.platforms.sandbox.orders import post_order
from bot.platforms.sandbox.requests import json_body, json_error
from bot.platforms.sandbox.sender import with_link
from bot.shared.callbacks import store_update
from bot.shared.keys import SESSIONS
from bot.shared.live_config import live
from bot.shared.prompt_links import LINKS, no_links
from handlers.updates import MessageUpdate
from storage.interactions import recent_messages
from storage.members import contacts_on, member_by_identity
from storage.models import utcnow
from storage.staff_messages import StaffMessage, active_staff, active_staff_member, staff_conversation

log = logging.getLogger(__name__)

PLATFORM = "sandbox"
PAGE = Path(__file__).with_name("page.html")
MAX_MEMBER = 64
MAX_TEXT = 2000
STAFF_PREFIX = "staff:"
CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
HEARTBEAT_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class SandboxMessage:
    sender: str  # the member's sandbox name, or the staff member's userid
    text: str
    client_id: str | None
    actor: Literal["member", "staff"] = "member"


class BadMessage(ValueError):
    pass


def parse_message(body: Any) -> SandboxMessage:
    """Validate a POSTed message; raises BadMessage with what to fix."""
    if not isinstance(body, dict):
        raise BadMessage('expected a JSON object like {"member": "王芳", "text": "你好"}')
    member, staff = body.get("member"), body.get("staff")
    text, client_id = body.get("text"), body.get("id")
    if member is not None and staff is not None:
        raise BadMessage('give either "member" (a member\'s name) or "staff" (a staff userid), not both')
    actor: Literal["member", "staff"] = "member" if staff is None else "staff"
    sender = member if staff is None else staff
    if not isinstance(sender, str) or not sender.strip():
        if actor == "staff":
            raise BadMessage('"staff" must be a staff member\'s userid')
        raise BadMessage(
            '"member" is required: the member\'s name in the sandbox (or "staff": a staff member\'s userid)'
        )
    sender = sender.strip()
    if len(sender) > MAX_MEMBER:
        raise BadMessage(f'"{actor}" must be at most {MAX_MEMBER} characters')
    if actor == "member" and sender.startswith(STAFF_PREFIX):
        # Such a name would share its inbox keys with a staff member's messages.
        raise BadMessage(f'"member" must not start with "{STAFF_PREFIX}": it is kept for staff')
    if not isinstance(text, str) or not text.strip():
        raise BadMessage('"text" is required and must not be blank')
    if len(text) > MAX_TEXT:
        raise BadMessage(f'"text" must be at most {MAX_TEXT} characters')
    if client_id is not None and (not isinstance(client_id, str) or not CLIENT_ID.fullmatch(client_id)):
        raise BadMessage('"id" must be 1-64 letters, digits, "-" or "_"')
    return SandboxMessage(sender, text, client_id, actor)


async def post_message(request: web.Request) -> web.Response:
    body = await json_body(request)
    try:
        message = parse_message(body)
    except BadMessage as error:
        raise json_error(web.HTTPBadRequest, str(error)) from None
    # The client's id makes a resent message the same update; without one, each POST is new.
    suffix = message.client_id or uuid.uuid4().hex
    if message.actor == "staff":
        # A staff member writes as they would to the WeCom app: only staff we know.
        async with request.app[SESSIONS]() as session:
            staff = await active_staff_member(session, message.sender)
        if staff is None:
            raise json_error(web.HTTPBadRequest, f"no staff member with userid {message.sender!r}")
        key, sender_name = f"{PLATFORM}:{STAFF_PREFIX}{message.sender}:{suffix}", staff.name
    else:
        key, sender_name = f"{PLATFORM}:{message.sender}:{suffix}", message.sender
    update = MessageUpdate(
        key=key,
        platform=PLATFORM,
        sender=message.sender,
        text=message.text,
        sent_at=utcnow(),
        sender_name=sender_name,
        actor=message.actor,
    )
    await store_update(request.app, update)
    return web.json_response({"key": key}, status=202)


def page_headers(html: str) -> dict[str, str]:
    """The chat page's headers: its inline script and style allowed by their digests and
    nothing else, never framed, never sniffed."""
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)

    def digests(blocks: list[str]) -> str:
        return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks)

    policy = (f"default-src 'none'; script-src {digests(scripts)}; style-src {digests(styles)}; connect-src 'self'; "
              "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
    return {"Cache-Control": "no-cache", "Content-Security-Policy": policy, "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


PAGE_HTML = web.AppKey("sandbox_page", bytes)
PAGE_HEADERS = web.AppKey("sandbox_page_headers", dict)


async def page(request: web.Request) -> web.Response:
    return web.Response(body=request.app[PAGE_HTML], content_type="text/html", charset="utf-8",
                        headers=request.app[PAGE_HEADERS])


async def info(request: web.Request) -> web.Response:
    settings = live(request).settings
    persona = settings.persona
    console = "/admin/" if settings.console.users else None  # the demo's chat links to its console
    return web.json_response(
        {"persona": {"name": persona.name, "title": persona.title}, "console_url": console}
    )


async def members(request: web.Request) -> web.Response:
    query = request.query.get("q", "").strip()[:MAX_MEMBER]
    async with request.app[SESSIONS]() as session:
        contacts = await contacts_on(session, PLATFORM, query)
    return web.json_response(
        {"members": [{"id": c.external_id, "name": c.name or c.external_id, "store": c.store} for c in contacts]}
    )


def _member_param(request: web.Request) -> str:
    member = request.query.get("member", "").strip()
    if not member or len(member) > MAX_MEMBER:
        raise json_error(web.HTTPBadRequest, '"member" query parameter is required')
    return member


async def history(request: web.Request) -> web.Response:
    name = _member_param(request)
    async with request.app[SESSIONS]() as session:
        member = await member_by_identity(session, PLATFORM, name)
        rows = await recent_messages(session, member.id) if member and member.id else []
    return web.json_response(
        {
            "messages": [
                {
                    "key": row.ref,
                    "direction": "in" if row.kind == "message_in" else "out",
                    "text": row.text,
                    "at": row.at.isoformat(),
                }
                for row in rows
            ]
        }
    )


def _watched(request: web.Request) -> Watched:
    """Whom an event stream follows: ?member=<name>, or ?staff=<userid> for the staff panel."""
    if "staff" in request.query:
        if "member" in request.query:
            raise json_error(web.HTTPBadRequest, 'give either "member" or "staff", not both')
        userid = request.query["staff"].strip()
        if not userid or len(userid) > MAX_MEMBER:
            raise json_error(web.HTTPBadRequest, '"staff" must be a staff member\'s userid')
        return staff_key(userid)
    return _member_param(request)


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: each message delivered to the member (or to the staff
    member), as it is delivered."""
    watched = _watched(request)
    hub = request.app[SANDBOX_HUB]
    queue = hub.watch(watched)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    try:
        await response.prepare(request)
        await response.write(b"retry: 2000\n\n")
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if event is None:
                break
            data = json.dumps(event, ensure_ascii=False)
            await response.write(f"event: message\ndata: {data}\n\n".encode())
        return response
    except ConnectionResetError:  # the tab was closed: news, not an error
        log.info("sandbox events: the client went away (%s)", request.remote)
        return response
    finally:
        hub.unwatch(watched, queue)


async def staff_list(request: web.Request) -> web.Response:
    """The active staff, for the staff panel's picker."""
    async with request.app[SESSIONS]() as session:
        staff = await active_staff(session)
    return web.json_response(
        {"staff": [{"userid": s.userid, "name": s.name, "store": s.store} for s in staff]}
    )


async def staff_messages(request: web.Request) -> web.Response:
    """A staff member's conversation with the bot, oldest first: their commands and
    the prompts sent to them."""
    userid = request.match_info["userid"].strip()
    async with request.app[SESSIONS]() as session:
        staff = await active_staff_member(session, userid)
        rows = await staff_conversation(session, PLATFORM, userid) if staff is not None else []
    if staff is None:
        raise json_error(web.HTTPNotFound, f"no staff member with userid {userid!r}")
    links = request.app.get(LINKS, no_links)

    def shown(m: StaffMessage) -> str:  # a prompt as it was delivered: with its task link
        return with_link(m.text, json.loads(m.meta), userid, links) if m.direction == "out" else m.text

    return web.json_response(
        {
            "staff": {"userid": staff.userid, "name": staff.name},
            "messages": [
                {"key": m.key, "direction": m.direction, "text": shown(m), "at": m.at.isoformat()}
                for m in rows
            ],
        }
    )


async def _close_streams(app: web.Application) -> None:
    app[SANDBOX_HUB].close()


def add_routes(app: web.Application) -> None:
    html = PAGE.read_text(encoding="utf-8")  # once, while the app is built (not on the loop)
    app[PAGE_HTML], app[PAGE_HEADERS] = html.encode(), page_headers(html)
    app.router.add_get("/sandbox", page)
    app.router.add_get("/sandbox/info", info)
    app.router.add_get("/sandbox/members", members)
    app.router.add_get("/sandbox/history", history)
    app.router.add_get("/sandbox/events", events)
    app.router.add_get("/sandbox/staff", staff_list)
    app.router.add_get("/sandbox/staff/{userid}/messages", staff_messages)
    app.router.add_post("/sandbox/messages", post_message)
    app.router.add_post("/sandbox/orders", post_order)
    app.on_shutdown.append(_close_streams)
