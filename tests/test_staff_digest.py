"""The morning digest per staff member, and escalation of long-overdue tasks to the store
manager: once a day, once a task, whatever reruns."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import select

from content_templates.renderer import Renderer
from scheduler.staff_digest import send_digests
from storage.engine import SessionFactory
from storage.models import Member, OutboxEntry, Staff, StaffTask, Store

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 24, 0, 0, tzinfo=timezone.utc)  # 08:00 in Shanghai
TODAY = NOW.astimezone(SHANGHAI).date()


async def seed(sessions: SessionFactory) -> None:
    async with sessions() as session, session.begin():
        store = Store(code="jingan", name="静安店")
        session.add(store)
        await session.flush()
        zhang = Staff(userid="zhangsan", name="张三", store_id=store.id)
        boss = Staff(userid="boss", name="王店长", store_id=store.id, role="manager")
        fang = Member(name="王芳")
        session.add_all([zhang, boss, fang])
        await session.flush()
        session.add_all([
            StaffTask(dedupe_key="late", staff_id=zhang.id, member_id=fang.id, kind="handoff_reply",
                      title="人工回复：王芳", due_date=TODAY - timedelta(days=3)),
            StaffTask(dedupe_key="today", staff_id=zhang.id, kind="birthday_gift", title="生日花束", due_date=TODAY),
            StaffTask(dedupe_key="soon", staff_id=zhang.id, kind="six_moments", title="新季预告", due_date=TODAY + timedelta(days=2)),
            StaffTask(dedupe_key="later", staff_id=zhang.id, kind="six_moments", title="专属邀请", due_date=TODAY + timedelta(days=9)),
            StaffTask(dedupe_key="closed", staff_id=zhang.id, kind="six_moments", title="已做完", due_date=TODAY,
                      status="done", done_at=NOW),
        ])


async def prompts(sessions: SessionFactory) -> dict[str, str]:
    async with sessions() as session:
        rows = await session.execute(select(OutboxEntry.dedupe_key, OutboxEntry.recipient, OutboxEntry.body)
                                     .where(OutboxEntry.kind == "staff_prompt"))
        return {f"{key}>{to}": body for key, to, body in rows.all()}


async def test_each_staff_member_gets_one_digest_and_the_manager_hears_of_the_late_task(sessions: SessionFactory) -> None:
    await seed(sessions)
    report = await send_digests(sessions, Renderer(), SHANGHAI, NOW, "sandbox")
    assert (report.digests, report.escalations) == (1, 1)
    found = await prompts(sessions)
    digest = found[f"digest:zhangsan:{TODAY}>zhangsan"]
    assert digest.index("【已逾期】") < digest.index("人工回复：王芳") < digest.index("【今天】") < digest.index("生日花束")
    assert "新季预告" in digest and "专属邀请" not in digest and "已做完" not in digest
    assert "3 个待办任务" in digest
    ((key, escalation),) = [(key, body) for key, body in found.items() if key.startswith("escalate:")]
    assert key.endswith(">boss") and "张三" in escalation and "逾期 3 天" in escalation

    again = await send_digests(sessions, Renderer(), SHANGHAI, NOW + timedelta(hours=1), "sandbox")
    assert again.digests == 1 and len(await prompts(sessions)) == 2  # the same keys: nothing new


async def test_without_a_channel_to_staff_nothing_is_sent(sessions: SessionFactory) -> None:
    await seed(sessions)
    assert (await send_digests(sessions, Renderer(), SHANGHAI, NOW, None)).digests == 0
    assert await prompts(sessions) == {}
