"""The sandbox chat page in a real browser (Debian's chromium, driven by Playwright)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.shared.keys import DELIVERY
from storage.engine import SessionFactory
from storage.models import InboxEntry, OutboxEntry, Staff, StaffTask, Store, utcnow
from storage.outbox import NewOutboxMessage, enqueue
from tests.browser_harness import needs_chromium, screenshot_path
from tests.conftest import RunningServer, eventually

pytest.importorskip("playwright", reason="browser tests need the playwright package (pip install -e '.[test]')")
from playwright.async_api import Browser, expect  # noqa: E402

pytestmark = needs_chromium


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_member_chats_and_the_persona_reply_appears_without_reloading(
    server: RunningServer, browser: Browser, tmp_path: Path
) -> None:
    page = await browser.new_page(viewport={"width": 1100, "height": 720}, locale="zh-CN")
    await page.goto(f"{server.base}/sandbox")
    await page.get_by_test_id("new-member-input").fill("王芳")
    await page.get_by_test_id("new-member-button").click()
    await expect(page.get_by_test_id("connection-status")).to_contain_text("已连接")
    await expect(page.get_by_test_id("console-link")).to_be_hidden()  # no console configured here

    await page.get_by_test_id("message-input").fill("想买全麦吐司，有推荐吗")
    await page.get_by_test_id("send-button").click()

    mine = page.locator('[data-testid="message"][data-direction="in"]')
    replies = page.locator('[data-testid="message"][data-direction="out"]')
    await expect(mine).to_have_count(1)
    await expect(replies).to_have_count(1)
    await expect(replies.first).to_contain_text("面包控")
    await expect(page.get_by_test_id("member-list")).to_contain_text("王芳")
    await page.screenshot(path=str(screenshot_path(tmp_path, "sandbox-chat.png")))

    # A reload shows the same conversation from history, once.
    await page.reload()
    await page.get_by_test_id("member-item").filter(has_text="王芳").click()
    await expect(mine).to_have_count(1)
    await expect(replies).to_have_count(1)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_staff_member_sends_a_command_and_prompts_arrive_without_reloading(
    server: RunningServer, sessions: SessionFactory, browser: Browser, tmp_path: Path
) -> None:
    async with sessions() as session, session.begin():
        store = Store(code="jingan", name="静安店", city="上海")
        session.add(store)
        await session.flush()
        chenjing = Staff(userid="chenjing", name="陈静", store_id=store.id, role="manager")
        session.add_all([chenjing, Staff(userid="liuyang", name="刘洋", store_id=store.id)])
        await session.flush()
        session.add(StaffTask(
            id=12, dedupe_key="care:birthday:wangfang", staff_id=chenjing.id, kind="birthday",
            title="王芳 周五生日：发一句祝福", due_date=date.today(),
        ))
        # This morning's reminder, already on her phone when she opens the app.
        await enqueue(session, [NewOutboxMessage(
            "prompt:morning", "sandbox", "chenjing", "staff_prompt",
            "早上好，今天有 1 个任务：\n#12 王芳 周五生日：发一句祝福\n做完回复「完成 12」", staff_id=chenjing.id,
        )], utcnow())
    server.app[DELIVERY].wake()
    await eventually(lambda: settled(sessions))

    page = await browser.new_page(viewport={"width": 1100, "height": 720}, locale="zh-CN")
    await page.goto(f"{server.base}/sandbox")
    await page.get_by_test_id("tab-staff").click()
    await expect(page.get_by_test_id("staff-hint")).to_contain_text("跳过 <任务号> <原因>")
    await page.get_by_test_id("staff-item").filter(has_text="陈静").click()
    await expect(page.get_by_test_id("connection-status")).to_contain_text("已连接")
    mine = page.locator('[data-testid="staff-message"][data-direction="in"]')
    prompts = page.locator('[data-testid="staff-message"][data-direction="out"]')
    await expect(prompts.first).to_contain_text("今天有 1 个任务")

    # A prompt delivered while the panel is open shows up live.
    async with sessions() as session, session.begin():
        await enqueue(session, [NewOutboxMessage(
            "prompt:new", "sandbox", "chenjing", "staff_prompt", "新任务 #13：回访李娜，问问蛋糕是否满意", staff_id=chenjing.id,
        )], utcnow())
    server.app[DELIVERY].wake()
    await expect(prompts.filter(has_text="新任务 #13")).to_have_count(1)

    await page.get_by_test_id("staff-message-input").fill("完成 12")
    await page.get_by_test_id("staff-send-button").click()
    await expect(mine).to_have_count(1)
    await expect(mine.first).to_contain_text("完成 12")
    # Whatever the bot answers the command with (if it answers) arrives before the picture.
    await eventually(lambda: settled(sessions))
    await expect(prompts).to_have_count(await sent_prompts(sessions, "chenjing"))
    # The member chat never saw any of it.
    await expect(page.locator('[data-testid="message"]')).to_have_count(0)
    shot = screenshot_path(tmp_path, "sandbox-staff.png")
    await page.screenshot(path=str(shot))

    # A reload on the staff tab shows the same conversation from history, once.
    await page.reload()
    await page.get_by_test_id("staff-item").filter(has_text="陈静").click()
    await expect(mine).to_have_count(1)
    await expect(prompts).to_have_count(await sent_prompts(sessions, "chenjing"))


async def settled(sessions: SessionFactory) -> bool:
    """Every inbox row handled and every outbox row sent (or otherwise finished)."""
    async with sessions() as session:
        inbox = (await session.execute(select(InboxEntry.status))).scalars().all()
        outbox = (await session.execute(select(OutboxEntry.status))).scalars().all()
    return all(s != "pending" for s in inbox) and all(s not in ("pending", "sending") for s in outbox)


async def sent_prompts(sessions: SessionFactory, userid: str) -> int:
    async with sessions() as session:
        statement = select(func.count()).where(
            OutboxEntry.kind == "staff_prompt", OutboxEntry.recipient == userid, OutboxEntry.status == "sent"
        )
        return int((await session.execute(statement)).scalar_one())
