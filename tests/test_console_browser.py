"""The operator console in a real browser (Debian's chromium, driven by Playwright):
log in, find a member and see her tags, create a calendar entry and see it in the
preview, mark a task done. Each page's screenshot is kept for the README."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.cli.demo_brand import DEMO_PASSWORD, DemoResult, prepare_demo, write_config
from bot.settings.model import load_settings
from bot.web.app import build_app
from storage.migrate import upgrade
from tests.browser_harness import needs_chromium, screenshot_path
from tests.conftest import RunningServer, start_server
from tests.console_harness import PASSWORD, ConsoleServer

pytest.importorskip("playwright", reason="browser tests need the playwright package (pip install -e '.[test]')")
from playwright.async_api import Browser, Page, expect  # noqa: E402

pytestmark = needs_chromium
ON_SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
VIEWPORT = {"width": 1280, "height": 860}


async def logged_in(browser: Browser, console: ConsoleServer, login: str, start: str = "/admin/") -> Page:
    page = await browser.new_page(viewport=VIEWPORT, locale="zh-CN")
    await page.goto(console.base + start)
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    await page.get_by_test_id("login-name").fill(login)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-button").click()
    await expect(page.get_by_test_id("viewer")).to_contain_text(login if login == "ops" else "")
    return page


@ON_SQLITE
async def test_a_staff_member_logs_in_and_marks_a_task_done(
    console: ConsoleServer, browser: Browser, tmp_path: Path
) -> None:
    page = await browser.new_page(viewport=VIEWPORT, locale="zh-CN")
    await page.goto(console.base + "/admin/")
    await page.screenshot(path=screenshot_path(tmp_path, "console-login.png"))
    await page.get_by_test_id("login-name").fill("liuyang")
    await page.get_by_test_id("login-password").fill("wrong password")
    await page.get_by_test_id("login-button").click()
    await expect(page.get_by_test_id("login-problem")).to_contain_text("登录名或密码不对")

    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-button").click()
    await expect(page.get_by_test_id("viewer")).to_contain_text("刘洋")
    rows = page.get_by_test_id("task-row")
    await expect(rows).to_have_count(1)
    await page.screenshot(path=screenshot_path(tmp_path, "console-tasks.png"))

    await rows.first.get_by_role("link").click()
    await expect(page.get_by_test_id("task-title")).to_contain_text("王芳 生日")
    await expect(page.get_by_test_id("member-card")).to_contain_text("138****5678")
    await expect(page.get_by_test_id("task-words")).to_contain_text("生日快乐")
    await page.screenshot(path=screenshot_path(tmp_path, "console-task.png"), full_page=True)

    await page.get_by_test_id("done-note").fill("花已经送到")
    await page.get_by_test_id("done-button").click()
    await expect(page.get_by_test_id("task-notice")).to_contain_text("已标记为完成")
    await expect(page.get_by_test_id("task-status")).to_contain_text("已完成")
    await page.goto(console.base + "/admin/tasks")
    await expect(page.get_by_test_id("no-tasks")).to_be_visible()


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[tuple[RunningServer, DemoResult]]:
    """The demo brand (500 members, orders, layers, engagement, today's care) served."""
    settings = load_settings(write_config(tmp_path / "demo", 8080))
    upgrade(settings.storage.url)
    result = await prepare_demo(settings)
    async with aiohttp.ClientSession() as http:
        running = await start_server(build_app(settings), http)
        yield running, result
        await running.stop()


async def test_an_operator_logs_in_finds_a_member_and_sees_why_she_has_her_tags(
    demo: tuple[RunningServer, DemoResult], browser: Browser, tmp_path: Path
) -> None:
    server, seeded = demo
    member = seeded.example_member
    await server.post_message(member, "想买全麦吐司，有推荐吗")  # a rule tags her 面包控

    page = await browser.new_page(viewport=VIEWPORT, locale="zh-CN")
    await page.goto(server.base + "/sandbox")  # the demo's chat page links to the console
    await page.get_by_test_id("console-link").click()
    await page.get_by_test_id("login-name").fill("ops")
    await page.get_by_test_id("login-password").fill(DEMO_PASSWORD)
    await page.get_by_test_id("login-button").click()
    await expect(page.get_by_test_id("pyramid-row").first).to_be_visible()
    await expect(page.get_by_test_id("chart").first).to_be_visible()
    await page.screenshot(path=screenshot_path(tmp_path, "console-overview.png"), full_page=True)

    await page.get_by_test_id("nav").get_by_role("link", name="会员").click()
    await page.get_by_test_id("member-search-q").fill(member)
    await page.get_by_test_id("member-search-button").click()
    rows = page.get_by_test_id("member-row")
    await expect(rows.filter(has_text=member)).to_have_count(1)
    await page.screenshot(path=screenshot_path(tmp_path, "console-members.png"))

    await rows.filter(has_text=member).get_by_role("link").first.click()
    await expect(page.get_by_test_id("member-name")).to_contain_text(member)
    bread = page.get_by_test_id("tag-row").filter(has_text="面包控")
    await expect(bread.get_by_test_id("tag-rule")).to_contain_text("含任一关键词")  # the rule that gave it, in words
    await expect(page.get_by_test_id("member-timeline")).to_contain_text("想买全麦吐司")
    await page.screenshot(path=screenshot_path(tmp_path, "console-member.png"), full_page=True)

    # The same page in English.
    await page.get_by_test_id("language").click()
    await expect(page.get_by_test_id("member-tags")).to_contain_text("Contains any of")
    await expect(page.get_by_test_id("nav")).to_contain_text("Members")

    await page.goto(server.base + "/admin/rules")
    bread_rule = page.locator('[data-testid="rule-row"][data-rule="interest-bread"]')  # its id stays behind
    await expect(bread_rule).to_be_visible()
    await expect(bread_rule).not_to_contain_text("interest-bread")
    await page.get_by_test_id("language").click()  # back to Chinese for the pictures
    await page.screenshot(path=screenshot_path(tmp_path, "console-rules.png"), full_page=True)
    await page.goto(server.base + "/admin/calendar")
    await expect(page.locator('[data-testid="calendar-entry"][data-entry="friday-moments"]').first).to_be_visible()
    await page.screenshot(path=screenshot_path(tmp_path, "console-calendar.png"), full_page=True)
    await page.goto(server.base + "/admin/staff")
    await expect(page.get_by_test_id("staff-row").filter(has_text="陈静")).to_be_visible()
    await page.screenshot(path=screenshot_path(tmp_path, "console-staff.png"), full_page=True)
