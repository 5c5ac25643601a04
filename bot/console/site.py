"""The console sub-application at /admin/: sessions, login, CSRF, language, pages.

The encrypted cookie (`bot.console.cookies`) carries the language, the CSRF token, a
random session token and the task links followed; who is signed in is the session row
that token names (`storage.console_auth`), so a logout or a changed password ends the
session in every process. Every POST carries the session's CSRF token, in the form or in
the X-CSRF-Token header.

A task link is not a sign-in: it opens that one task's page and its done/skip (a link to
the task list: her open tasks), only while the task is open, and nothing else.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from aiohttp import web

from bot.console.cookies import SESSION, ConsoleSession, session_middleware
from bot.console.i18n import LANGUAGES
from bot.console.keys import CSRF, LANGUAGE, PHONE_EXPORTERS, VIEWER
from bot.console.passwords import check_password, hashing_limit
from bot.console.render import STATIC, render
from bot.settings.console import ConsoleUser
from bot.settings.model import Settings
from bot.shared.access import Viewer, staff_viewer
from bot.shared.keys import SESSIONS
from bot.shared.prompt_links import console_base_url
from bot.shared.task_links import link_holder
from handlers.outbound import TASK_LIST
from storage.backlog import BACKLOG
from storage.console_auth import (
    clear_failures,
    end_session,
    open_session,
    recent_failures,
    record_failure,
    session_login,
)
from storage.engine import create_reading_engine, is_sqlite, session_factory
from storage.models import StaffTask, utcnow

log = logging.getLogger(__name__)
OPEN_PATHS = ("/admin/login", "/admin/static/")
MAX_FAILURES, FAILURE_WINDOW = 5, timedelta(minutes=15)
MAX_LOGIN = 64  # no console login is longer (settings); a longer one is never looked up
MAX_GRANTS = 20  # task links remembered by one browser
TASK_PATH = re.compile(r"/admin/tasks/(\d{1,18})(?:/(?:done|skip))?")

SECRET = web.AppKey("console_secret", bytes)
USERS = web.AppKey("console_users", dict)  # login → ConsoleUser
HASHING = web.AppKey("console_hashing", asyncio.Semaphore)  # password checks running at once
LIFETIME = web.AppKey("console_lifetime", timedelta)
DEFAULT_LANGUAGE = web.AppKey("console_language", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def console_secret(settings: Settings) -> bytes:
    """The key that signs sessions and task links: configured, or new for this process."""
    configured = settings.console.secret
    return configured.get_secret_value().encode() if configured else secrets.token_bytes(32)


def add_console(app: web.Application, settings: Settings, secret: bytes) -> None:
    """Serve the console under /admin/ on `app`."""
    from bot.console import (
        calendar_page,
        config_page,
        conversations_page,
        group_welcomes_page,
        members_page,
        outcomes_page,
        overview_page,
        rules_page,
        segments_page,
        staff_page,
        tasks_page,
    )

    fernet_key = base64.urlsafe_b64encode(hashlib.sha256(b"console-session:" + secret).digest())
    sessions = session_middleware(fernet_key, settings.console.session_hours * 3600,
                                  secure=console_base_url(settings).startswith("https://"))
    console = web.Application(middlewares=[sessions, _signed_in, _readable_errors, _csrf_checked])
    console[SECRET] = secret
    console[USERS] = {user.login: user for user in settings.console.users}
    console[HASHING] = hashing_limit()
    console[LIFETIME] = timedelta(hours=settings.console.session_hours)
    console[PHONE_EXPORTERS] = frozenset(u.login for u in settings.console.users if u.export_phones)
    console[DEFAULT_LANGUAGE] = settings.console.language
    console.router.add_get("/login", login_page)
    console.router.add_post("/login", log_in)
    console.router.add_post("/logout", log_out)
    console.router.add_get("/language/{language}", switch_language)
    console.router.add_static("/static/", STATIC)
    console.router.add_get("", home)
    console.router.add_get("/", home)
    for page in (overview_page, segments_page, conversations_page, members_page, calendar_page, group_welcomes_page,
                 rules_page, config_page, staff_page, tasks_page, outcomes_page):
        page.add_routes(console)
    if is_sqlite(settings.storage.url):
        console.cleanup_ctx.append(_own_connections(settings.storage.url, settings.storage.console_connections))
    app.add_subapp("/admin", console)


def _own_connections(url: str, connections: int) -> Callable[[web.Application], AsyncIterator[None]]:
    """On SQLite the console reads through a few connections of its own: a page that
    counts a million members for seconds must hold neither the one connection the
    dispatcher and delivery write through nor the one the next console page reads
    through (WAL lets readers and the writer run side by side). Pages ask
    `request.config_dict[SESSIONS]`, which finds this sub-application's first."""

    async def connection(console: web.Application) -> AsyncIterator[None]:
        engine = create_reading_engine(url, connections)
        BACKLOG.watch_pool("console", engine)
        console[SESSIONS] = session_factory(engine)
        yield
        await engine.dispose()

    return connection


async def home(request: web.Request) -> web.StreamResponse:
    viewer: Viewer = request[VIEWER]
    raise web.HTTPFound("/admin/overview" if viewer.is_operator or viewer.store_id is not None else "/admin/tasks")


# -- middlewares -------------------------------------------------------------------------

@web.middleware
async def _signed_in(request: web.Request, handler: Handler) -> web.StreamResponse:
    session = request[SESSION]
    request[LANGUAGE] = session.get("language") or request.app[DEFAULT_LANGUAGE]
    request[CSRF] = session.setdefault("csrf", secrets.token_urlsafe(24))
    if request.path.startswith(OPEN_PATHS):
        return await handler(request)
    viewer = await _viewer_of(request, session)
    if viewer is None:
        await _follow_task_link(request)
        viewer = await _link_viewer(request, session)
    if viewer is None:
        if request.method == "GET":
            raise web.HTTPFound(f"/admin/login?next={quote(request.path_qs)}")
        raise web.HTTPUnauthorized(text="please log in / 请先登录")
    request[VIEWER] = viewer
    return await handler(request)


ERROR_TITLES = {403: "没有权限", 404: "找不到这个页面", 400: "请求有误", 409: "操作冲突"}


@web.middleware
async def _readable_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A refusal as a page in the console's look and language, not bare text: what
    happened, in words, and the way back."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        accept = request.headers.get("Accept", "")
        if error.status not in ERROR_TITLES or error.content_type != "text/plain" or (
                "application/json" in accept and "text/html" not in accept) or request.content_type == "application/json":
            raise  # a script's request keeps its plain answer
        english, _, chinese = (error.text or "").partition(" / ")
        message = chinese if request.get(LANGUAGE) == "zh" or not english else english
        return render(request, "error.html", http_status=error.status, title=ERROR_TITLES[error.status],
                      message=message or english, code=error.status)


@web.middleware
async def _csrf_checked(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method == "POST":
        session = request[SESSION]
        expected = session.get("csrf", "")
        given = request.headers.get("X-CSRF-Token", "")
        if not given and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            given = str((await request.post()).get("csrf", ""))
        if not expected or not hmac.compare_digest(given.encode(), str(expected).encode()):
            raise web.HTTPForbidden(text="this form has expired: reload the page and try again / 表单已过期，请刷新页面后重试")
    return await handler(request)


def credential_of(secret: bytes, user: ConsoleUser) -> str:
    """What a session remembers of the login's password: a keyed digest of its hash (or
    token), which stops matching when the password changes."""
    token = user.token.get_secret_value() if user.token is not None else ""
    message = f"{user.login}\n{user.password_hash or ''}\n{token}".encode()
    return hmac.new(secret, b"console-credential:" + message, hashlib.sha256).hexdigest()


async def _viewer_of(request: web.Request, session: ConsoleSession) -> Viewer | None:
    """Who the session's token signs in: its row must exist, be unexpired, name a login
    still configured, with the password it signed in with."""
    token = session.get("sid")
    if not isinstance(token, str) or not token:
        return None
    async with request.config_dict[SESSIONS]() as db:
        row = await session_login(db, token, utcnow())
        user: ConsoleUser | None = request.app[USERS].get(row.login) if row is not None else None
        if user is None or row is None or not hmac.compare_digest(row.credential, credential_of(request.app[SECRET], user)):
            if row is not None:  # the login was removed or its password changed
                await end_session(db, token)
                await db.commit()
            session.pop("sid", None)
            session.changed = True
            return None
        if user.role == "operator":
            return Viewer(user.login, "operator", name=user.login)
        assert user.staff is not None  # settings require it for role staff
        return await staff_viewer(db, user.login, user.staff)


async def _follow_task_link(request: web.Request) -> None:
    """A genuine task link is remembered in the cookie (for its path only) and the page
    is opened without the link's query, so the signature leaves the address bar."""
    if request.method != "GET" or not request.path.startswith(TASK_LIST) or "sig" not in request.query:
        return
    userid = link_holder(request.app[SECRET], request.path, request.query, utcnow())
    if userid is None:
        return
    grants = dict(request[SESSION].get("grants") or {})
    grants[request.path] = [userid, int(request.query["until"])]
    request[SESSION]["grants"] = dict(list(grants.items())[-MAX_GRANTS:])
    raise web.HTTPFound(request.path)


async def _link_viewer(request: web.Request, session: ConsoleSession) -> Viewer | None:
    """The staff member a followed task link stands for, on the pages that link opens:
    the task's page, done and skip while the task is open; from a link to the task list,
    that list and her open tasks. None anywhere else."""
    grants = session.get("grants")
    if not isinstance(grants, dict) or not grants:
        return None
    task_path = TASK_PATH.fullmatch(request.path)
    listing = request.path == TASK_LIST and request.method == "GET"
    if task_path is None and not listing:
        return None
    own = grants.get(f"{TASK_LIST}/{task_path.group(1)}") if task_path else None
    grant, by_list = (own, False) if own else (grants.get(TASK_LIST), True)
    if not (isinstance(grant, list) and len(grant) == 2 and isinstance(grant[0], str) and isinstance(grant[1], int)):
        return None
    if datetime.fromtimestamp(grant[1], timezone.utc) < utcnow():
        return None
    async with request.config_dict[SESSIONS]() as db:
        viewer = await staff_viewer(db, f"link:{grant[0]}", grant[0])
        if viewer is None or task_path is None:
            return _by_link(viewer)
        task = await db.get(StaffTask, int(task_path.group(1)))
        if task is None or task.status != "open":
            return None  # a closed task's link has done its work
        if by_list and not await viewer.may_act_on_task(db, task):
            return None
    return _by_link(viewer)


def _by_link(viewer: Viewer | None) -> Viewer | None:
    return None if viewer is None else Viewer(viewer.login, "staff", viewer.staff_id, viewer.store_id, viewer.name,
                                              by_link=True)


# -- login, logout, language -------------------------------------------------------------

async def login_page(request: web.Request) -> web.Response:
    return _login_form(request, None, 200, request.query.get("login", ""), request.query.get("next"))


def _login_form(request: web.Request, problem: str | None, status: int, login: str, next_path: str | None) -> web.Response:
    """The form again, keeping what was typed (but never the password)."""
    return render(request, "login.html", http_status=status, problem=problem, next=_safe_next(next_path), login=login)


async def log_in(request: web.Request) -> web.Response:
    form = await request.post()
    login, password = str(form.get("login", "")).strip(), str(form.get("password", ""))
    next_path = str(form.get("next", ""))
    shown = login[:MAX_LOGIN]  # what goes back into the form and the log
    async with request.config_dict[SESSIONS]() as db:
        failures = await recent_failures(db, login, utcnow(), FAILURE_WINDOW)  # by digest: any length
    if failures >= MAX_FAILURES:
        log.warning("console: login %r is locked after %d failures", shown, failures)
        return _login_form(request, "尝试次数过多，请 15 分钟后再试", 429, shown, next_path)
    user: ConsoleUser | None = request.app[USERS].get(login) if len(login) <= MAX_LOGIN else None
    matched = await _password_matches(request, user, password)  # for unknown logins too: the same time
    if user is None or not matched:
        async with request.config_dict[SESSIONS]() as db:
            await record_failure(db, login, utcnow(), FAILURE_WINDOW)
        log.warning("console: failed login for %r from %s", shown, request.remote)  # never the password
        return _login_form(request, "登录名或密码不对", 401, shown, next_path)
    token = secrets.token_urlsafe(32)
    async with request.config_dict[SESSIONS]() as db:
        await clear_failures(db, login)
        await open_session(db, token, login, credential_of(request.app[SECRET], user), utcnow(), request.app[LIFETIME])
        await db.commit()
    log.info("console: %s logged in", login)
    session = request[SESSION]
    language = session.get("language")
    session.renew(sid=token, csrf=secrets.token_urlsafe(24))  # a fresh session: no fixation
    if language:
        session["language"] = language
    raise web.HTTPFound(_safe_next(next_path) or "/admin/")


async def _password_matches(request: web.Request, user: ConsoleUser | None, password: str) -> bool:
    """One scrypt for every attempt, known login or not, off the loop."""
    stored = user.password_hash if user is not None else None
    matched = await check_password(password, stored, request.app[HASHING])
    if matched or user is None or user.token is None:
        return matched
    return hmac.compare_digest(password.encode(), user.token.get_secret_value().encode())


async def log_out(request: web.Request) -> web.Response:
    token = request[SESSION].get("sid")
    if isinstance(token, str) and token:
        async with request.config_dict[SESSIONS]() as db:
            await end_session(db, token)
            await db.commit()
    request[SESSION].end()
    raise web.HTTPFound("/admin/login")


async def switch_language(request: web.Request) -> web.Response:
    language = request.match_info["language"]
    if language not in LANGUAGES:
        raise web.HTTPNotFound()
    session = request[SESSION]
    session["language"] = language
    raise web.HTTPFound(_safe_next(request.query.get("next")) or "/admin/")


def _safe_next(target: str | None) -> str | None:
    """Only a path inside the console: never a redirect to somewhere else."""
    if target and target.startswith("/admin") and not target.startswith("//"):
        return target
    return None
