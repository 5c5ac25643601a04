"""Issue 14, the console's side: task links that open one task and nothing else, sessions
that end on the server, a bounded lockout shared by every process, and password checks
off the event loop. Through the real server and database."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select
from yarl import URL

from bot.console.passwords import MAX_CONCURRENT_HASHES, hash_password
from bot.settings.model import load_settings
from bot.shared.task_links import signed_link
from bot.web.app import build_app
from storage.console_auth import recent_failures, record_failure
from storage.console_models import ConsoleSessionRow, LoginFailure
from storage.engine import SessionFactory
from storage.models import StaffTask, utcnow
from tests.conftest import RunningServer, start_server, write_config
from tests.console_harness import (
    CONSOLE_CONFIG,
    PASSWORD,
    ConsoleClient,
    ConsoleServer,
    LoginRefused,
    seed_brand,
)

LogIn = Callable[..., Awaitable[ConsoleClient]]
SECRET = b"a-test-secret-that-is-long-enough-0123456789"  # CONSOLE_CONFIG's


def link(console: ConsoleServer | RunningServer, path: str, userid: str) -> str:
    return signed_link(console.base, SECRET, path, userid, utcnow(), days=7)


async def phone_get(http: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    """GET as the phone that holds the link would: cookies kept, redirects followed."""
    async with http.get(url) as response:
        return response.status, response.url.path, await response.text()


@pytest.fixture
async def phone() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield http


async def csrf_of(http: aiohttp.ClientSession, url: str) -> str:
    import re

    async with http.get(url) as response:
        found = re.search(r'name="csrf-token" content="([^"]+)"', await response.text())
    assert found
    return found.group(1)


# -- 1. a task link opens its task, its done and skip, while open: nothing else --------------

async def test_a_task_link_opens_its_task_and_done_and_nothing_else_of_the_console(
    console: ConsoleServer, phone: aiohttp.ClientSession, sessions: SessionFactory
) -> None:
    task = console.brand.tasks["birthday"]  # 刘洋's
    status, path, page = await phone_get(phone, link(console, f"/admin/tasks/{task}", "liuyang"))
    assert (status, path) == (200, f"/admin/tasks/{task}") and "王芳 生日" in page
    assert 'href="/admin/members' not in page and 'href="/admin/overview' not in page
    # Not a console session: her members, her list, other pages and other tasks ask for a login.
    for other in (f"/admin/members/{console.brand.members['王芳']}", "/admin/members", "/admin/tasks",
                  "/admin/overview", "/admin/", f"/admin/tasks/{console.brand.tasks['revisit']}"):
        assert (await phone_get(phone, console.base + other))[1] == "/admin/login", other
    # Done from the page, as she would.
    csrf = await csrf_of(phone, f"{console.base}/admin/tasks/{task}")
    async with phone.post(f"{console.base}/admin/tasks/{task}/done", data={"csrf": csrf, "note": "送到了"}) as response:
        assert response.status == 200 and "已标记为完成" in await response.text()
    async with sessions() as session:
        assert (await session.get(StaffTask, task)).status == "done"  # type: ignore[union-attr]
    # The task is closed: the link has done its work, and opening it again asks for a login.
    assert (await phone_get(phone, f"{console.base}/admin/tasks/{task}"))[1] == "/admin/login"
    assert (await phone_get(phone, link(console, f"/admin/tasks/{task}", "liuyang")))[1] == "/admin/login"


async def test_a_skip_by_link_needs_its_reason_and_another_tasks_done_is_refused(
    console: ConsoleServer, phone: aiohttp.ClientSession, sessions: SessionFactory
) -> None:
    task, other = console.brand.tasks["birthday"], console.brand.tasks["revisit"]
    await phone_get(phone, link(console, f"/admin/tasks/{task}", "liuyang"))
    csrf = await csrf_of(phone, f"{console.base}/admin/tasks/{task}")
    async with phone.post(f"{console.base}/admin/tasks/{other}/done", data={"csrf": csrf}) as response:
        assert response.status == 401
    async with phone.post(f"{console.base}/admin/tasks/{task}/skip", data={"csrf": csrf, "note": " "}) as response:
        assert response.status == 400
    async with phone.post(f"{console.base}/admin/tasks/{task}/skip", data={"csrf": csrf, "note": "她出差了"}) as response:
        assert response.status == 200 and "已跳过" in await response.text()
    async with sessions() as session:
        assert (await session.get(StaffTask, other)).status == "open"  # type: ignore[union-attr]


async def test_a_list_link_opens_her_open_tasks_and_no_members(
    console: ConsoleServer, phone: aiohttp.ClientSession
) -> None:
    status, path, page = await phone_get(phone, link(console, "/admin/tasks", "liuyang"))
    assert (status, path) == (200, "/admin/tasks") and "王芳 生日" in page
    task = console.brand.tasks["birthday"]
    assert (await phone_get(phone, f"{console.base}/admin/tasks/{task}"))[1] == f"/admin/tasks/{task}"
    assert (await phone_get(phone, f"{console.base}/admin/tasks/{console.brand.tasks['revisit']}"))[1] == "/admin/login"
    assert (await phone_get(phone, f"{console.base}/admin/members/{console.brand.members['王芳']}"))[1] == "/admin/login"
    assert (await phone_get(phone, f"{console.base}/admin/staff"))[1] == "/admin/login"


# -- 2. a staff userid is not the console login of the same name -------------------------

async def test_a_staff_link_never_signs_in_the_operator_login_of_the_same_name(
    db_url: str, tmp_path: Path, sessions: SessionFactory, phone: aiohttp.ClientSession
) -> None:
    brand = await seed_brand(sessions)
    config = CONSOLE_CONFIG.replace('login = "chenjing"\nrole = "staff"\nstaff = "chenjing"', 'login = "chenjing"\nrole = "operator"')
    settings = load_settings(write_config(tmp_path, db_url, config))
    assert next(u for u in settings.console.users if u.login == "chenjing").role == "operator"
    async with aiohttp.ClientSession() as http:
        server = await start_server(build_app(settings), http)
        try:
            # 陈静 manages 静安店, so a link for her opens 刘洋's task …
            task = brand.tasks["birthday"]
            status, path, _ = await phone_get(phone, link(server, f"/admin/tasks/{task}", "chenjing"))
            assert (status, path) == (200, f"/admin/tasks/{task}")
            # … and never the operator login named "chenjing".
            for page in ("/admin/overview", "/admin/members", "/admin/calendar", "/admin/staff"):
                assert (await phone_get(phone, server.base + page))[1] == "/admin/login", page
        finally:
            await server.stop()


# -- 4. logging out and changing a password end the session on the server ----------------

def cookie_of(client: ConsoleClient) -> str:
    return client.http.cookie_jar.filter_cookies(URL(client.base + "/admin/"))["siyu_console"].value


async def with_cookie(base: str, cookie: str, path: str = "/admin/tasks") -> str:
    """The path the cookie lands on (a stolen copy, replayed from elsewhere)."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(base + path, headers={"Cookie": f"siyu_console={cookie}"}) as response,
    ):
        return response.url.path


async def test_a_cookie_copied_before_logout_is_refused_after_it(console: ConsoleServer, log_in: LogIn) -> None:
    client = await log_in("liuyang")
    copied = cookie_of(client)
    assert await with_cookie(console.base, copied) == "/admin/tasks"
    await client.post("/admin/logout", {})
    assert await with_cookie(console.base, copied) == "/admin/login"


async def test_logout_and_a_changed_password_end_sessions_in_every_process(
    db_url: str, tmp_path: Path, sessions: SessionFactory
) -> None:
    await seed_brand(sessions)
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    first_dir.mkdir(), second_dir.mkdir()
    settings = load_settings(write_config(first_dir, db_url, CONSOLE_CONFIG))
    new_hash = hash_password("a-new-password-2026")
    changed = CONSOLE_CONFIG.replace('login = "liuyang"\nrole = "staff"\nstaff = "liuyang"\npassword_hash = "',
                                     f'login = "liuyang"\nrole = "staff"\nstaff = "liuyang"\npassword_hash = "{new_hash}"\n# "')
    renewed = load_settings(write_config(second_dir, db_url, changed))
    assert next(u for u in renewed.console.users if u.login == "liuyang").password_hash == new_hash
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        one = await start_server(build_app(settings), http)
        two = await start_server(build_app(settings), http)
        three = await start_server(build_app(renewed), http)  # a process started after the change
        try:
            # Logged out in one process: refused by the other too.
            ops = await sign_in(one.base, "ops")
            copied = cookie_of(ops)
            assert await with_cookie(two.base, copied) == "/admin/tasks"
            await ops.post("/admin/logout", {})
            assert await with_cookie(two.base, copied) == "/admin/login"
            # 刘洋's password changed: her session opened with the old one ends, everywhere.
            liuyang = await sign_in(one.base, "liuyang")
            copied = cookie_of(liuyang)
            assert await with_cookie(three.base, copied) == "/admin/login"
            assert await with_cookie(one.base, copied) == "/admin/login"
            async with sessions() as session:
                logins = (await session.execute(select(ConsoleSessionRow.login))).scalars().all()
            assert "liuyang" not in logins
        finally:
            for server in (one, two, three):
                await server.stop()
            for client in CLIENTS:
                await client.http.close()
            CLIENTS.clear()


CLIENTS: list[ConsoleClient] = []


async def sign_in(base: str, login: str, password: str = PASSWORD) -> ConsoleClient:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    client = ConsoleClient(base, http)
    CLIENTS.append(client)
    csrf = await client.csrf("/admin/login")
    async with http.post(base + "/admin/login", data={"login": login, "password": password, "csrf": csrf}) as response:
        if response.url.path == "/admin/login":
            raise LoginRefused(response.status, await response.text())
    return client


async def test_the_session_table_holds_no_cookie_token(console: ConsoleServer, log_in: LogIn,
                                                       sessions: SessionFactory) -> None:
    await log_in("ops")
    async with sessions() as session:
        (row,) = (await session.execute(select(ConsoleSessionRow))).scalars().all()
    assert row.login == "ops" and len(row.id) == 64 and row.expires_at > utcnow()


# -- 5. failed logins: bounded, pruned, shared -------------------------------------------

async def test_a_huge_login_is_never_kept_and_the_lockout_holds_across_processes(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory, db_url: str, tmp_path: Path
) -> None:
    huge = "x" * 200_000
    with pytest.raises(LoginRefused) as refused:
        await log_in(huge, "wrong")
    assert refused.value.status == 401 and huge not in refused.value.page
    async with sessions() as session:
        rows = (await session.execute(select(LoginFailure))).scalars().all()
    assert [len(r.key) for r in rows] == [64]  # a digest, whatever was typed
    for _ in range(5):
        with pytest.raises(LoginRefused):
            await log_in("ops", "wrong")
    # Another process sharing the database sees the lockout.
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    settings = load_settings(write_config(other_dir, db_url, CONSOLE_CONFIG))
    async with aiohttp.ClientSession() as http:
        other = await start_server(build_app(settings), http)
        try:
            with pytest.raises(LoginRefused) as locked:
                await sign_in(other.base, "ops")
            assert locked.value.status == 429
        finally:
            await other.stop()
            for client in CLIENTS:
                await client.http.close()
            CLIENTS.clear()


async def test_the_failure_table_keeps_at_most_its_limit_and_forgets_old_failures(sessions: SessionFactory) -> None:
    now, window = utcnow(), timedelta(minutes=15)
    async with sessions() as session:
        for n in range(8):
            await record_failure(session, f"guess-{n}", now + timedelta(seconds=n), window, limit=5)
        assert (await session.execute(select(func.count()).select_from(LoginFailure))).scalar_one() == 5
        kept = set((await session.execute(select(LoginFailure.key))).scalars())
        assert kept == {hashlib.sha256(f"guess-{n}".encode()).hexdigest() for n in range(3, 8)}  # the newest
        # A failure after the window has passed clears what is older than it.
        later = now + window + timedelta(minutes=1)
        assert await record_failure(session, "guess-7", later, window, limit=5) == 1  # counting again
        assert (await session.execute(select(func.count()).select_from(LoginFailure))).scalar_one() == 1
        assert await recent_failures(session, "guess-3", later, window) == 0


# -- 12. password checks: off the loop, bounded, and one per attempt -----------------------

class ScryptWatch:
    """hashlib.scrypt as it runs: on which threads, and how many at once."""

    def __init__(self, real: Callable[..., bytes]):
        self.real, self.lock = real, threading.Lock()
        self.threads: list[int] = []
        self.running = self.most = 0

    def __call__(self, *args: Any, **kwargs: Any) -> bytes:
        with self.lock:
            self.threads.append(threading.get_ident())
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return self.real(*args, **kwargs)
        finally:
            with self.lock:
                self.running -= 1


async def test_every_login_costs_one_scrypt_off_the_loop_and_few_run_at_once(
    console: ConsoleServer, log_in: LogIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch = ScryptWatch(hashlib.scrypt)
    monkeypatch.setattr(hashlib, "scrypt", watch)
    loop_thread = threading.get_ident()
    await log_in("ops")  # right
    with pytest.raises(LoginRefused):
        await log_in("nobody-by-this-name", "whatever")  # unknown: the same work as a known login
    with pytest.raises(LoginRefused):
        await log_in("robot", "not-the-token")  # a token login
    assert len(watch.threads) == 3 and loop_thread not in watch.threads

    async def attempt(n: int) -> None:
        with pytest.raises(LoginRefused):
            await log_in(f"someone-{n}", "wrong")

    await asyncio.gather(*(attempt(n) for n in range(12)))
    assert len(watch.threads) == 15 and watch.most <= MAX_CONCURRENT_HASHES
