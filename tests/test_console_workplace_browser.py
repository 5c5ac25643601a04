"""The console as the operator's workplace, in a real browser (Debian's chromium, driven
by Playwright): a segment built, counted live, saved, used as a calendar audience and
exported; a store manager on her store's overview; a hand-off from a member without an
owner reaching the manager, who answers from the console, and the member reading it in
the sandbox; and the task and member pages at a phone's 375 px. Screenshots are kept for
the README."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from bot.settings.calendar_context import calendar_context
from bot.settings.model import load_settings
from bot.web.app import build_app
from scheduler.calendar_run import load_calendar
from storage.engine import SessionFactory
from storage.models import Member, StaffTask, utcnow
from tests.browser_harness import needs_chromium, screenshot_path
from tests.conftest import eventually, start_server, write_config
from tests.console_harness import CONSOLE_CONFIG, PASSWORD, ConsoleServer, seed_brand

pytest.importorskip("playwright", reason="browser tests need the playwright package (pip install -e '.[test]')")
from playwright.async_api import Browser, Page, expect  # noqa: E402

pytestmark = [needs_chromium, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]
VIEWPORT = {"width": 1280, "height": 860}
PHONE = {"width": 375, "height": 740}
HANDOFF_TO_MANAGER = '\n[handoff]\ndefault_staff = "chenjing"\n'


@pytest.fixture
async def workplace(db_url: str, tmp_path: Path, sessions: SessionFactory) -> AsyncIterator[ConsoleServer]:
    """The console's small brand, with hand-offs of members without a store going to 陈静."""
    settings = load_settings(write_config(tmp_path, db_url, CONSOLE_CONFIG + HANDOFF_TO_MANAGER))
    brand = await seed_brand(sessions)
    async with aiohttp.ClientSession() as http:
        running = await start_server(build_app(settings), http)
        running.settings = settings  # type: ignore[attr-defined]
        yield ConsoleServer(running, brand)
        await running.stop()


async def logged_in(browser: Browser, base: str, login: str, viewport: dict = VIEWPORT) -> Page:
    page = await browser.new_page(viewport=viewport, locale="zh-CN", accept_downloads=True)
    await page.goto(base + "/admin/login")
    await page.get_by_test_id("login-name").fill(login)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-button").click()
    await expect(page.get_by_test_id("viewer")).to_be_visible()
    return page


async def test_an_operator_builds_a_segment_saves_it_uses_it_as_an_audience_and_exports_it(
    workplace: ConsoleServer, browser: Browser, sessions: SessionFactory, tmp_path: Path
) -> None:
    async with sessions() as session, session.begin():
        sneaky = await session.get(Member, workplace.brand.members["李娜"])
        assert sneaky is not None
        sneaky.name = "=李娜"  # a name a spreadsheet would read as a formula
    page = await logged_in(browser, workplace.base, "ops")
    await page.goto(workplace.base + "/admin/members")
    await page.get_by_test_id("segment-builder").locator("summary").click()
    await page.get_by_test_id("segment-stores").select_option(["jingan"])
    await expect(page.get_by_test_id("segment-count")).to_contain_text("符合条件：2 人")  # live, before 筛选
    await page.get_by_test_id("segment-opted_out").select_option("no")
    await page.get_by_test_id("segment-apply").click()
    await expect(page.get_by_test_id("member-row")).to_have_count(2)
    await page.get_by_test_id("segment-name").fill("静安在订会员")
    await page.get_by_test_id("segment-save-button").click()
    await expect(page.get_by_test_id("segment-notice")).to_contain_text("细分已保存")
    await expect(page.get_by_test_id("segment-loaded")).to_have_text("静安在订会员")
    await page.screenshot(path=screenshot_path(tmp_path, "console-segment.png"), full_page=True)

    # The calendar names it as an audience; the month view counts it.
    settings = workplace.server.settings  # type: ignore[attr-defined]
    entry = ('[[entries]]\nid = "jingan-weekly"\ntitle = "静安店每周提醒"\ncron = "0 10 * * *"\n'
             'channel = "staff_task"\ntemplate = "calendar/new_season.txt.j2"\naudience = {{ segment = "{}" }}\n')
    changes, problems = await load_calendar(sessions, entry.format("静安在订会员"), "calendar.toml",
                                            calendar_context(settings), utcnow())
    assert problems == [] and changes is not None
    _, unknown = await load_calendar(sessions, entry.format("没有这个细分"), "calendar.toml",
                                     calendar_context(settings), utcnow())
    assert any("没有这个细分" in p for p in unknown)
    await page.goto(workplace.base + "/admin/calendar")
    firing = page.locator('[data-testid="calendar-firing"][data-entry="jingan-weekly"]').first
    await expect(firing).to_have_attribute("data-audience", "2")

    # Export every member of the segment.
    await page.goto(workplace.base + "/admin/members")
    await page.get_by_test_id("saved-segment").filter(has_text="静安在订会员").click()
    await page.get_by_test_id("bulk-details").locator("summary").click()
    await page.get_by_test_id("bulk-scope").select_option("all")
    await page.get_by_test_id("bulk-action").select_option("export")
    await page.get_by_test_id("bulk-format").select_option("csv")
    async with page.expect_download() as waiting:
        await page.get_by_test_id("bulk-apply").click()
    download = await waiting.value
    rows = list(csv.reader(io.StringIO(Path(await download.path()).read_text(encoding="utf-8-sig"))))
    names = sorted(r[1] for r in rows[1:])
    assert names == ["'=李娜", "王芳"]  # formula-safe
    assert "138****5678" in {r[2] for r in rows} and "13800135678" not in str(rows)  # masked


async def test_a_store_manager_opens_her_stores_overview(
    workplace: ConsoleServer, browser: Browser, sessions: SessionFactory, tmp_path: Path
) -> None:
    page = await logged_in(browser, workplace.base, "chenjing")
    await expect(page.get_by_test_id("store-overview")).to_contain_text("静安店")  # her home page
    await expect(page.get_by_test_id("members-total")).to_have_text("2")
    await page.screenshot(path=screenshot_path(tmp_path, "console-store-overview.png"), full_page=True)
    await page.get_by_test_id("nav").get_by_role("link", name="店员").click()
    await expect(page.get_by_test_id("staff-row")).to_have_count(2)  # 陈静 and 刘洋, not 徐汇店's
    await page.goto(workplace.base + "/admin/rules")
    await expect(page.get_by_test_id("error-page")).to_contain_text("没有权限")  # readable, in Chinese
    await page.screenshot(path=screenshot_path(tmp_path, "console-forbidden.png"))


async def test_a_hand_off_from_a_member_without_an_owner_reaches_the_manager_who_answers_from_the_console(
    workplace: ConsoleServer, browser: Browser, sessions: SessionFactory, tmp_path: Path
) -> None:
    chat = await browser.new_page(viewport={"width": 1100, "height": 720}, locale="zh-CN")
    await chat.goto(workplace.base + "/sandbox")
    await chat.get_by_test_id("new-member-input").fill("新会员")
    await chat.get_by_test_id("new-member-button").click()
    await expect(chat.get_by_test_id("connection-status")).to_contain_text("已连接")
    await chat.get_by_test_id("message-input").fill("我要投诉")
    await chat.get_by_test_id("send-button").click()
    replies = chat.locator('[data-testid="message"][data-direction="out"]')
    await expect(replies).to_have_count(1)  # told once that a person will answer

    async def handed_to_manager() -> bool:
        async with sessions() as session:
            task = (await session.execute(select(StaffTask).where(StaffTask.kind == "handoff_reply"))).scalars().first()
            return task is not None and task.staff_id == workplace.brand.staff["chenjing"]
    await eventually(handed_to_manager)

    page = await logged_in(browser, workplace.base, "chenjing")
    await page.get_by_test_id("nav").get_by_role("link", name="转人工").click()
    row = page.get_by_test_id("handoff-row").filter(has_text="新会员")
    await expect(row).to_contain_text("陈静")
    await page.screenshot(path=screenshot_path(tmp_path, "console-handoffs.png"), full_page=True)
    await row.get_by_test_id("handoff-conversation").click()
    await expect(page.get_by_test_id("conversation")).to_contain_text("我要投诉")
    await expect(page.get_by_test_id("line-why").first).to_contain_text("转人工")
    await page.get_by_test_id("reply-text").fill("您好，我是店长陈静，这就为您处理。")
    await page.get_by_test_id("reply-button").click()
    await expect(page.get_by_test_id("conversation-notice")).to_contain_text("回复已排队发送")
    await expect(page.get_by_test_id("line-staff")).to_contain_text("这就为您处理")
    await page.screenshot(path=screenshot_path(tmp_path, "console-conversation.png"), full_page=True)

    await expect(replies).to_have_count(2)  # it reached her in the sandbox, without a reload
    await expect(replies.last).to_contain_text("这就为您处理")
    async with sessions() as session:
        task = (await session.execute(select(StaffTask).where(StaffTask.kind == "handoff_reply"))).scalars().one()
    assert task.status == "done"

    # The persona answers facts again once the hand-off is closed.
    await chat.get_by_test_id("message-input").fill("几点开门？")
    await chat.get_by_test_id("send-button").click()
    await expect(replies).to_have_count(3)


async def test_task_and_member_pages_fit_a_phone(
    workplace: ConsoleServer, browser: Browser, sessions: SessionFactory, tmp_path: Path
) -> None:
    async def fits(page: Page) -> None:
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{page.url} is {width} px wide"
        header = await page.evaluate("document.querySelector('header.top').getBoundingClientRect().height")
        assert header < 200, f"the header takes {header} px"

    async with sessions() as session, session.begin():
        task = await session.get(StaffTask, workplace.brand.tasks["birthday"])
        assert task is not None
        task.due_date = task.due_date - timedelta(days=2)  # overdue: the badge shows too
    staff = await logged_in(browser, workplace.base, "liuyang", PHONE)
    await staff.goto(workplace.base + "/admin/tasks")
    await expect(staff.get_by_test_id("task-row")).to_have_count(1)
    await fits(staff)
    await staff.screenshot(path=screenshot_path(tmp_path, "mobile-tasks.png"), full_page=True)
    await staff.get_by_test_id("task-row").get_by_role("link").click()
    await expect(staff.get_by_test_id("task-title")).to_be_visible()
    await fits(staff)
    await staff.screenshot(path=screenshot_path(tmp_path, "mobile-task.png"), full_page=True)

    ops = await logged_in(browser, workplace.base, "ops", PHONE)
    await ops.goto(workplace.base + "/admin/members")
    await expect(ops.get_by_test_id("member-row")).to_have_count(3)
    await fits(ops)
    await ops.screenshot(path=screenshot_path(tmp_path, "mobile-members.png"), full_page=True)
    await ops.get_by_test_id("member-row").filter(has_text="王芳").get_by_role("link").first.click()
    await expect(ops.get_by_test_id("member-name")).to_contain_text("王芳")
    await fits(ops)
    await ops.screenshot(path=screenshot_path(tmp_path, "mobile-member.png"), full_page=True)
    # A member's 🎂 is drawn from an emoji font where the machine has one, not as a box.
    fonts = await ops.evaluate("getComputedStyle(document.body).fontFamily")
    assert "Noto Color Emoji" in fonts and fonts.index("Noto Color Emoji") < fonts.index("sans-serif")
