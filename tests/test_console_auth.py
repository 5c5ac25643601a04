"""Console logins, roles and CSRF, through the real server and database."""

from __future__ import annotations

import asyncio
import io
import re
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli.main import main
from bot.console import rules_page
from bot.console.passwords import hash_password, verify_password
from bot.settings.model import load_settings
from bot.shared.keys import SESSIONS
from bot.shared.task_links import link_holder, signed_link
from bot.web.app import build_app
from storage.engine import SessionFactory
from storage.models import Member, OutboxEntry
from tests.conftest import eventually, start_server, write_config
from tests.console_harness import (
    CONSOLE_CONFIG,
    OPERATOR_TOKEN,
    PASSWORD,
    ConsoleClient,
    ConsoleServer,
    LoginRefused,
    seed_brand,
)

LogIn = Callable[..., Awaitable[ConsoleClient]]
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)
SECRET = b"k" * 32


def test_a_password_hash_verifies_only_its_password_and_is_salted() -> None:
    first, second = hash_password("禾麦 bakery 2026"), hash_password("禾麦 bakery 2026")
    assert first != second  # salted
    assert verify_password("禾麦 bakery 2026", first) and verify_password("禾麦 bakery 2026", second)
    assert not verify_password("禾麦 bakery 2027", first)
    assert not verify_password("禾麦 bakery 2026", "scrypt$1$1$1$bad$bad")


def test_hash_password_reads_stdin_and_refuses_a_short_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-enough-password\n"))
    assert main(["console", "hash-password"]) == 0
    assert verify_password("a-long-enough-password", capsys.readouterr().out.strip())
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["console", "hash-password"]) == 1
    assert "at least 8 characters" in capsys.readouterr().err


def test_a_task_link_holds_for_its_path_and_staff_until_it_expires() -> None:
    link = signed_link("https://ops.example.com", SECRET, "/admin/tasks/12", "liuyang", NOW, days=7)
    url = urlsplit(link)
    assert link.startswith("https://ops.example.com/admin/tasks/12?")
    query = dict(parse_qsl(url.query))
    assert link_holder(SECRET, "/admin/tasks/12", query, NOW) == "liuyang"
    assert link_holder(SECRET, "/admin/tasks/12", query, NOW + timedelta(days=8)) is None  # expired
    assert link_holder(SECRET, "/admin/tasks/13", query, NOW) is None  # another task
    assert link_holder(b"x" * 32, "/admin/tasks/12", query, NOW) is None  # another secret
    assert link_holder(SECRET, "/admin/tasks/12", query | {"as": "chenjing"}, NOW) is None
    assert link_holder(SECRET, "/admin/tasks/12", query | {"until": str(int(query["until"]) + 86400)}, NOW) is None


async def test_pages_need_a_login_and_send_the_visitor_back_after_it(console: ConsoleServer) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(console.base + "/admin/tasks?status=all") as response:
            assert response.status == 200
            assert response.url.path == "/admin/login"
            page = await response.text()
        assert 'name="next" value="/admin/tasks?status=all"' in page
        async with http.post(console.base + "/admin/tasks/1/done", data={}) as response:
            assert response.status == 401  # no session, no form


async def test_a_wrong_password_is_refused_and_repeated_failures_lock_the_login(
    console: ConsoleServer, log_in: LogIn, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(LoginRefused) as refused:
        await log_in("ops", "not-the-password")
    assert refused.value.status == 401 and "登录名或密码不对" in refused.value.page
    for _ in range(4):
        with pytest.raises(LoginRefused):
            await log_in("ops", "still-wrong")
    # Five failures: even the right password waits now, and other logins do not.
    with pytest.raises(LoginRefused) as locked:
        await log_in("ops")
    assert locked.value.status == 429 and "15 分钟" in locked.value.page
    said = caplog.text
    assert "failed login for 'ops'" in said and "locked after 5 failures" in said
    assert "not-the-password" not in said and "still-wrong" not in said  # never a password in the log
    await log_in("robot", OPERATOR_TOKEN)


async def test_an_operator_may_log_in_with_a_token(console: ConsoleServer, log_in: LogIn) -> None:
    client = await log_in("robot", OPERATOR_TOKEN)
    assert "全部任务" in await client.get("/admin/tasks")


async def test_a_form_without_the_csrf_token_is_refused_and_changes_nothing(
    console: ConsoleServer, log_in: LogIn
) -> None:
    client = await log_in("liuyang")
    task = console.brand.tasks["birthday"]
    refused = await client.post(f"/admin/tasks/{task}/done", {}, expect=403, csrf=False)
    assert "表单已过期" in refused
    forged = await client.post(f"/admin/tasks/{task}/done", {"csrf": "guessed"}, expect=403, csrf=False)
    assert "表单已过期" in forged
    assert "待办" in await client.get(f"/admin/tasks/{task}")


async def test_staff_see_their_own_tasks_and_not_another_stores(console: ConsoleServer, log_in: LogIn) -> None:
    liuyang = await log_in("liuyang")
    mine = await liuyang.get("/admin/tasks")
    assert "王芳 生日" in mine and "赵雪" not in mine
    await liuyang.get(f"/admin/tasks/{console.brand.tasks['revisit']}", expect=403)
    # Operators' pages are not for staff.
    await liuyang.get("/admin/overview", expect=403)

    # 陈静 manages 静安店: she sees 刘洋's task, and still not 徐汇店's.
    chenjing = await log_in("chenjing")
    store = await chenjing.get("/admin/tasks")
    assert "王芳 生日" in store and "赵雪" not in store


async def test_a_staff_member_marks_a_task_done_and_skips_one_only_with_a_reason(
    console: ConsoleServer, log_in: LogIn
) -> None:
    zhoumin = await log_in("zhoumin")
    task = console.brand.tasks["revisit"]
    page = await zhoumin.get(f"/admin/tasks/{task}")
    assert "逾期" in page
    assert "需要写原因" in await zhoumin.post(f"/admin/tasks/{task}/skip", {"note": "  "}, expect=400)
    done = await zhoumin.post(f"/admin/tasks/{task}/done", {"note": "打过电话了"})
    assert "已标记为完成" in done and "打过电话了" in done
    # A second click (another tab, a retry) does not close it twice.
    assert "已经处理过了" in await zhoumin.post(f"/admin/tasks/{task}/done", {}, expect=409)
    assert f'data-task="{task}"' in await zhoumin.get("/admin/tasks?status=done")


async def test_logging_out_ends_the_session(console: ConsoleServer, log_in: LogIn) -> None:
    client = await log_in("ops")
    await client.post("/admin/logout", {})
    page = await client.get("/admin/tasks")
    assert re.search(r'data-testid="login-form"', page)


async def test_the_console_speaks_english_on_request(console: ConsoleServer, log_in: LogIn) -> None:
    client = await log_in("liuyang")
    page = await client.get("/admin/language/en?next=/admin/tasks")
    assert "My tasks" in page and "我的任务" not in page


async def test_an_operator_narrows_the_task_list_to_one_staff_member(console: ConsoleServer, log_in: LogIn) -> None:
    client = await log_in("ops")
    everyone = await client.get("/admin/tasks?status=all")
    assert "王芳 生日" in everyone and "流失回访：赵雪" in everyone
    one = await client.get("/admin/tasks?status=all&staff=zhoumin")
    assert "流失回访：赵雪" in one and "王芳 生日" not in one
    # Staff cannot widen or shift their view with the same parameter.
    liuyang = await log_in("liuyang")
    assert "流失回访：赵雪" not in await liuyang.get("/admin/tasks?status=all&staff=zhoumin")


async def test_pages_are_never_cached_framed_or_able_to_run_foreign_scripts(console: ConsoleServer) -> None:
    async with aiohttp.ClientSession() as http, http.get(console.base + "/admin/login") as response:
        headers = response.headers
    assert headers["Cache-Control"] == "no-store" and headers["X-Frame-Options"] == "DENY"
    policy = headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL pools its connections
async def test_a_long_console_read_does_not_hold_up_members_replies(console: ConsoleServer) -> None:
    admin = next(r.get_info()["app"] for r in console.server.app.router.resources()
                 if isinstance(r, web.PrefixedSubAppResource) and r.get_info()["prefix"] == "/admin")
    pages = admin[SESSIONS] if SESSIONS in admin else console.server.app[SESSIONS]  # what its pages read through
    async with pages() as reading, reading.begin():
        await reading.execute(select(func.count()).select_from(Member))  # a page mid-count
        await console.server.post_message("王芳", "想买全麦吐司")
        await eventually(lambda: replied(console.server.app[SESSIONS]))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL pages share the main pool
async def test_a_long_console_read_does_not_hold_up_another_console_page(
    console: ConsoleServer, log_in: LogIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rules page's read is held inside SQLite (a function that waits for the test)
    while a member search is asked for over HTTP: the search answers first."""
    entered, release = threading.Event(), threading.Event()

    def held_read() -> int:  # runs on the connection's own thread, as a slow count would
        entered.set()
        release.wait(60)
        return 1

    real_runs = rules_page.last_layer_runs

    async def slow_layer_runs(session: AsyncSession) -> dict[str, datetime]:
        raw = await (await session.connection()).get_raw_connection()
        await raw.driver_connection.create_function("held_read", 0, held_read)
        await session.execute(text("SELECT held_read()"))
        return await real_runs(session)

    monkeypatch.setattr(rules_page, "last_layer_runs", slow_layer_runs)
    ops = await log_in("ops")
    rules = asyncio.create_task(ops.get("/admin/rules"))
    try:
        assert await asyncio.to_thread(entered.wait, 30), "the rules page never reached its read"
        found = await asyncio.wait_for(ops.get("/admin/members?q=王"), 30)  # a hang fails, not a slow answer
        assert "王芳" in found
        assert not rules.done()  # answered while the long read was still running
    finally:
        release.set()
        page = (await asyncio.gather(rules, return_exceptions=True))[0]
    assert 'data-testid="rule-row"' in str(page)


async def replied(sessions: SessionFactory) -> bool:
    async with sessions() as session:
        statement = select(func.count()).select_from(OutboxEntry).where(OutboxEntry.status == "sent")
        return (await session.execute(statement)).scalar_one() > 0


async def test_a_login_outlives_a_restart_when_the_secret_is_configured(
    db_url: str, tmp_path: Path, sessions: SessionFactory
) -> None:
    await seed_brand(sessions)
    settings = load_settings(write_config(tmp_path, db_url, CONSOLE_CONFIG))
    unsigned = settings.model_copy(update={"console": settings.console.model_copy(update={"secret": None})})
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        first = await start_server(build_app(settings), http)
        client = ConsoleClient(first.base, http)
        page = await client.get("/admin/login")
        token = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert token
        async with http.post(first.base + "/admin/login", data={"login": "liuyang", "password": PASSWORD,
                                                                "csrf": token.group(1)}) as response:
            assert response.url.path == "/admin/tasks"
        await first.stop()

        again = await start_server(build_app(settings), http)  # the same secret: still signed in
        assert "我的任务" in await ConsoleClient(again.base, http).get("/admin/tasks")
        await again.stop()

        fresh = await start_server(build_app(unsigned), http)  # a secret made at start: log in again
        assert 'data-testid="login-form"' in await ConsoleClient(fresh.base, http).get("/admin/tasks")
        await fresh.stop()


async def test_bad_addresses_and_bodies_get_clear_answers_and_change_nothing(
    console: ConsoleServer, log_in: LogIn
) -> None:
    ops = await log_in("ops")
    assert "没有这个任务" in await ops.get("/admin/tasks/999999", expect=404)
    await ops.get("/admin/tasks/not-a-number", expect=404)
    await ops.get("/admin/language/fr", expect=404)
    headers = {"X-CSRF-Token": await ops.csrf(), "Content-Type": "application/json"}
    for body in ("{not json", "[1, 2]"):
        async with ops.http.post(console.base + "/admin/calendar/validate", data=body, headers=headers) as response:
            assert response.status == 400 and "a JSON object is expected" in await response.text()
    # A redirect after login only ever stays inside the console.
    page = await ops.get("/admin/login?next=https://elsewhere.example/")
    assert 'name="next" value=""' in page
