"""The console sub-application at /admin/: sessions, login, CSRF, language, pages.

Sessions live in an encrypted cookie (`bot.console.cookies`), so any server process
can read them and nothing is stored per login. Every POST carries the session's
CSRF token, in the form or in the X-CSRF-Token header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import quote

from aiohttp import web

from bot.console.cookies import SESSION, ConsoleSession, session_middleware
from bot.console.i18n import LANGUAGES
from bot.console.keys import CSRF, LANGUAGE, VIEWER
from bot.console.passwords import verify_password
from bot.console.render import STATIC, render
from bot.settings.console import ConsoleUser
from bot.settings.model import Settings
from bot.shared.access import Viewer, staff_viewer
from bot.shared.keys import SESSIONS
from bot.shared.prompt_links import console_base_url
from bot.shared.task_links import link_holder
from storage.engine import create_database_engine, is_sqlite, session_factory
from storage.models import utcnow

log = logging.getLogger(__name__)
OPEN_PATHS = ("/admin/login", "/admin/static/")
MAX_FAILURES, FAILURE_WINDOW = 5, 15 * 60

SECRET = web.AppKey("console_secret", bytes)
USERS = web.AppKey("console_users", dict)  # login → ConsoleUser
FAILURES = web.AppKey("console_failures", dict)  # login → monotonic times of recent failures
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
        group_welcomes_page,
        members_page,
        outcomes_page,
        overview_page,
        rules_page,
        staff_page,
        tasks_page,
    )

    fernet_key = base64.urlsafe_b64encode(hashlib.sha256(b"console-session:" + secret).digest())
    sessions = session_middleware(fernet_key, settings.console.session_hours * 3600,
                                  secure=console_base_url(settings).startswith("https://"))
    console = web.Application(middlewares=[sessions, _signed_in, _csrf_checked])
    console[SECRET] = secret
    console[USERS] = {user.login: user for user in settings.console.users}
    console[FAILURES] = {}
    console[DEFAULT_LANGUAGE] = settings.console.language
    console.router.add_get("/login", login_page)
    console.router.add_post("/login", log_in)
    console.router.add_post("/logout", log_out)
    console.router.add_get("/language/{language}", switch_language)
    console.router.add_static("/static/", STATIC)
    console.router.add_get("", home)
    console.router.add_get("/", home)
    for page in (overview_page, members_page, calendar_page, group_welcomes_page, rules_page, staff_page, tasks_page,
                 outcomes_page):
        page.add_routes(console)
    if is_sqlite(settings.storage.url):
        console.cleanup_ctx.append(_own_connection(settings.storage.url))
    app.add_subapp("/admin", console)


def _own_connection(url: str) -> Callable[[web.Application], AsyncIterator[None]]:
    """On SQLite the console reads through a connection of its own: a page that counts a
    million members for seconds must not hold the one connection the dispatcher and
    delivery write through (WAL lets readers and the writer run side by side). Pages ask
    `request.config_dict[SESSIONS]`, which finds this sub-application's first."""

    async def connection(console: web.Application) -> AsyncIterator[None]:
        engine = create_database_engine(url, checkpoints=False)
        console[SESSIONS] = session_factory(engine)
        yield
        await engine.dispose()

    return connection


async def home(request: web.Request) -> web.StreamResponse:
    viewer: Viewer = request[VIEWER]
    raise web.HTTPFound("/admin/overview" if viewer.is_operator else "/admin/tasks")


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
        viewer = await _follow_task_link(request)
    if viewer is None:
        if request.method == "GET":
            raise web.HTTPFound(f"/admin/login?next={quote(request.path_qs)}")
        raise web.HTTPUnauthorized(text="please log in / 请先登录")
    request[VIEWER] = viewer
    return await handler(request)


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


async def _viewer_of(request: web.Request, session: ConsoleSession) -> Viewer | None:
    login = session.get("login")
    if not login:
        return None
    user: ConsoleUser | None = request.app[USERS].get(login)
    if user is not None and user.role == "operator":
        return Viewer(login, "operator", name=login)
    staff_userid = user.staff if user is not None else session.get("staff")
    if not staff_userid or (user is None and not session.get("by_link")):
        return None  # a login removed from the config since
    async with request.config_dict[SESSIONS]() as db:
        return await staff_viewer(db, login, staff_userid)


async def _follow_task_link(request: web.Request) -> Viewer | None:
    """A genuine task link signs its staff member in, and lands on the page without it."""
    if request.method != "GET" or not request.path.startswith("/admin/tasks") or "sig" not in request.query:
        return None
    userid = link_holder(request.app[SECRET], request.path, request.query, utcnow())
    if userid is None:
        return None
    async with request.config_dict[SESSIONS]() as db:
        viewer = await staff_viewer(db, userid, userid)
    if viewer is None:
        return None
    request[SESSION].renew(login=userid, staff=userid, by_link=True, csrf=secrets.token_urlsafe(24))
    raise web.HTTPFound(request.path)


# -- login, logout, language -------------------------------------------------------------

async def login_page(request: web.Request) -> web.Response:
    return _login_form(request, None, 200, request.query.get("login", ""), request.query.get("next"))


def _login_form(request: web.Request, problem: str | None, status: int, login: str, next_path: str | None) -> web.Response:
    """The form again, keeping what was typed (but never the password)."""
    return render(request, "login.html", http_status=status, problem=problem, next=_safe_next(next_path), login=login)


async def log_in(request: web.Request) -> web.Response:
    form = await request.post()
    login, password = str(form.get("login", "")).strip(), str(form.get("password", ""))
    failures: dict[str, list[float]] = request.app[FAILURES]
    recent = [t for t in failures.get(login, []) if time.monotonic() - t < FAILURE_WINDOW]
    next_path = str(form.get("next", ""))
    if len(recent) >= MAX_FAILURES:
        log.warning("console: login %r is locked after %d failures", login[:64], len(recent))
        return _login_form(request, "尝试次数过多，请 15 分钟后再试", 429, login, next_path)
    user: ConsoleUser | None = request.app[USERS].get(login)
    if user is None or not _password_matches(user, password):
        failures[login] = [*recent, time.monotonic()]
        log.warning("console: failed login for %r from %s", login[:64], request.remote)  # never the password
        return _login_form(request, "登录名或密码不对", 401, login, next_path)
    failures.pop(login, None)
    log.info("console: %s logged in", login)
    session = request[SESSION]
    language = session.get("language")
    session.renew(login=login, csrf=secrets.token_urlsafe(24))  # a fresh session: no fixation
    if language:
        session["language"] = language
    raise web.HTTPFound(_safe_next(next_path) or "/admin/")


def _password_matches(user: ConsoleUser, password: str) -> bool:
    if user.password_hash is not None and verify_password(password, user.password_hash):
        return True
    token = user.token.get_secret_value() if user.token is not None else None
    return token is not None and hmac.compare_digest(password.encode(), token.encode())


async def log_out(request: web.Request) -> web.Response:
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
