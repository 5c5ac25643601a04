"""The operator console in a real browser (Debian's chromium, driven by Playwright):
log in, find a member and see her tags, create a calendar entry and see it in the
preview, mark a task done. Each page's screenshot is kept for the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_harness import needs_chromium, screenshot_path
from tests.console_harness import PASSWORD, ConsoleServer

pytest.importorskip("playwright", reason="browser tests need the playwright package (pip install -e '.[test]')")
from playwright.async_api import Browser, Page, expect  # noqa: E402

pytestmark = [needs_chromium, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]
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
