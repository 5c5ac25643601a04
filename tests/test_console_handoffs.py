"""Conversations and hand-offs in the console through the real server: the conversation
across platforms with what the bot did and why, the hand-off queue (unassigned first,
operators told), assignment by operators and the store's manager, and a reply from the
console that reaches the member in the sandbox through the outbox."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import select

from bot.console.conversations_page import readable_why
from storage.engine import SessionFactory
from storage.models import Interaction, Member, MemberIdentity, OutboxEntry, StaffTask, utcnow
from tests.conftest import eventually
from tests.console_harness import ConsoleClient, ConsoleServer

LogIn = Callable[..., Awaitable[ConsoleClient]]


async def new_member_with_complaint(sessions: SessionFactory, store_id: int | None) -> tuple[int, int]:
    """A sandbox member without an owner who wrote 「我要投诉」 an hour ago: her task is unassigned."""
    now = utcnow()
    async with sessions() as session, session.begin():
        member = Member(name="孙丽", store_id=store_id)
        session.add(member)
        await session.flush()
        assert member.id is not None
        session.add(MemberIdentity(member_id=member.id, platform="sandbox", external_id="孙丽"))
        session.add(Interaction(member_id=member.id, kind="message_in", platform="sandbox", at=now - timedelta(hours=1),
                                text="我要投诉", ref="in:1"))
        session.add(OutboxEntry(dedupe_key="reply:1:0", platform="sandbox", recipient="孙丽", member_id=member.id,
                                kind="service", body="已经转给店里的同事", status="sent", sent_at=now - timedelta(hours=1),
                                meta='{"why": "handoff:hand-off word"}'))
        session.add(OutboxEntry(dedupe_key="cal:x", platform="sandbox", recipient="孙丽", member_id=member.id,
                                kind="marketing", body="新品上市", status="held", last_error="opted out"))
        task = StaffTask(dedupe_key="handoff:x", kind="handoff_reply", title="人工回复：孙丽", member_id=member.id,
                         due_date=now.date(), note="hand-off word", created_at=now - timedelta(hours=1))
        session.add(task)
        await session.flush()
        assert task.id is not None
        return member.id, task.id


def queue_rows(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-testid="handoff-row" data-task="(\d+)"', page)]


async def test_the_conversation_shows_both_ways_and_why_and_the_queue_puts_unassigned_first(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    member_id, task_id = await new_member_with_complaint(sessions, None)
    ops = await log_in("ops")
    page = await ops.get(f"/admin/members/{member_id}/conversation")
    assert "我要投诉" in page and "已经转给店里的同事" in page and "转人工关键词" in page
    assert 'data-testid="line-status">已拦截' in page  # held by her opt-out, shown as such
    assert 'data-testid="reply-form"' in page

    queue = await ops.get("/admin/handoffs")
    assert queue_rows(queue)[0] == task_id and 'data-testid="unassigned-alert"' in queue

    await ops.post(f"/admin/handoffs/{task_id}/assign", {"staff": "zhoumin"})
    async with sessions() as session:
        task = await session.get(StaffTask, task_id)
        assert task is not None and task.staff_id == console.brand.staff["zhoumin"]
        prompt = (await session.execute(select(OutboxEntry).where(OutboxEntry.kind == "staff_prompt",
                                                                  OutboxEntry.recipient == "zhoumin"))).scalars().one()
        assert "孙丽" in prompt.body
    assert 'data-testid="unassigned-alert"' not in await ops.get("/admin/handoffs")


async def test_the_store_manager_assigns_and_answers_and_the_member_receives_it(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    member_id, task_id = await new_member_with_complaint(sessions, console.brand.stores["jingan"])
    manager = await log_in("chenjing")
    assert queue_rows(await manager.get("/admin/handoffs")) == [task_id]
    other_store = await log_in("zhoumin")
    assert queue_rows(await other_store.get("/admin/handoffs")) == []
    await other_store.get(f"/admin/members/{member_id}/conversation", expect=404)

    await manager.post(f"/admin/handoffs/{task_id}/assign", {"staff": "chenjing"})
    await manager.post(f"/admin/members/{member_id}/reply", {"text": "您好，我是店长陈静，马上为您处理。", "close": "1"})

    async def delivered() -> bool:
        async with sessions() as session:
            row = (await session.execute(select(OutboxEntry).where(
                OutboxEntry.dedupe_key.startswith("console-reply:")))).scalars().first()  # type: ignore[attr-defined]
            return row is not None and row.status == "sent"
    await eventually(delivered)
    async with sessions() as session:
        said = (await session.execute(select(Interaction).where(Interaction.member_id == member_id,
                                                                Interaction.kind == "staff_out"))).scalars().one()
        assert said.text == "您好，我是店长陈静，马上为您处理。"
        task = await session.get(StaffTask, task_id)
        assert task is not None and task.status == "done"
    page = await manager.get(f"/admin/members/{member_id}/conversation")
    assert "马上为您处理" in page and 'data-testid="line-staff"' in page


async def test_staff_cannot_assign_and_a_wecom_contact_has_no_reply_box(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    member_id, task_id = await new_member_with_complaint(sessions, console.brand.stores["jingan"])
    staff = await log_in("liuyang")
    await staff.post(f"/admin/handoffs/{task_id}/assign", {"staff": "liuyang"}, expect=403)
    ops = await log_in("ops")
    await ops.post(f"/admin/handoffs/{task_id}/assign", {"staff": "nobody"}, expect=400)
    await ops.post(f"/admin/members/{member_id}/reply", {"text": ""}, expect=400)
    wangfang = console.brand.members["王芳"]
    async with sessions() as session, session.begin():
        await session.execute(MemberIdentity.__table__.delete().where(  # type: ignore[attr-defined]
            MemberIdentity.member_id == wangfang))
        session.add(MemberIdentity(member_id=wangfang, platform="wecom", external_id="wmABC"))
    page = await ops.get(f"/admin/members/{wangfang}/conversation")
    assert 'data-testid="wecom-note"' in page and "刘洋" in page and 'data-testid="reply-form"' not in page
    await ops.post(f"/admin/members/{wangfang}/reply", {"text": "你好"}, expect=409)


def test_reasons_read_as_people_say_them() -> None:
    assert readable_why("faq:opening-hours") == ("常见问题", "opening-hours")
    assert readable_why("handoff:angry tone") == ("转人工", "情绪激动")
    assert readable_why("persona") == ("人设回复", "")


async def test_operators_are_told_on_the_overview_about_unassigned_hand_offs(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    ops = await log_in("ops")
    assert 'data-testid="unassigned-alert"' not in await ops.get("/admin/overview")
    await new_member_with_complaint(sessions, None)
    assert "有 1 个转人工还没有人负责" in await ops.get("/admin/overview")


async def test_staff_see_their_own_tasks_and_a_manager_her_stores_or_her_own(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    def listed(page: str) -> set[int]:
        return {int(i) for i in re.findall(r'data-testid="task-row" data-task="(\d+)"', page)}

    _, handoff = await new_member_with_complaint(sessions, console.brand.stores["jingan"])
    tasks = console.brand.tasks
    liuyang = await log_in("liuyang")
    page = await liuyang.get("/admin/tasks")
    assert listed(page) == {tasks["birthday"]} and "我的任务" in page
    manager = await log_in("chenjing")
    store = await manager.get("/admin/tasks")
    assert "本店任务" in store and listed(store) == {tasks["birthday"], handoff}  # the store's, the unassigned one too
    assert listed(await manager.get("/admin/tasks?mine=1")) == set()
    # She may act on the unassigned hand-off about her store's member; the other store's manager may not.
    await manager.get(f"/admin/tasks/{handoff}")
    zhoumin = await log_in("zhoumin")
    await zhoumin.get(f"/admin/tasks/{handoff}", expect=403)
