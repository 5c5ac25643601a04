"""Automatic replies and hand-off end to end through the sandbox: FAQ, office hours, the
reply budget, bots left unanswered, and a person taking over."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import select, update

from bot.settings.model import load_settings
from bot.web.app import build_app
from storage.engine import SessionFactory
from storage.members import member_by_identity
from storage.models import Member, OutboxEntry, Staff, StaffTask, Store
from tests.conftest import RunningServer, start_server, write_config
from tests.test_tagging_flow import say

REPLIES = """
[templates]
dir = "templates"

[replies]
max_replies = 3
per_minutes = 10
ignore_senders = ["友商机器人"]

[[replies.faq]]
id = "opening-hours"
keywords = ["几点开门", "营业时间"]
template = "faq/hours.txt.j2"
"""


def write_templates(directory: Path) -> None:
    faq = directory / "templates" / "faq"
    faq.mkdir(parents=True)
    (faq / "hours.txt.j2").write_text("{{ persona.name }}：门店每天 8:00 开门。", encoding="utf-8")


async def start(tmp_path: Path, db_url: str, http: aiohttp.ClientSession, extra: str = "") -> RunningServer:
    write_templates(tmp_path)
    return await start_server(build_app(load_settings(write_config(tmp_path, db_url, REPLIES + extra))), http)


@pytest.fixture
async def server(db_url: str, tmp_path: Path, http: aiohttp.ClientSession) -> AsyncIterator[RunningServer]:
    running = await start(tmp_path, db_url, http)
    yield running
    await running.stop()


async def replies_to(sessions: SessionFactory, member: str) -> list[str]:
    async with sessions() as session:
        found = await member_by_identity(session, "sandbox", member)
        assert found is not None
        rows = await session.execute(
            select(OutboxEntry.body).where(OutboxEntry.member_id == found.id).order_by(OutboxEntry.id)
        )
        return list(rows.scalars())


async def test_an_faq_entry_answers_from_its_template(server: RunningServer, sessions: SessionFactory) -> None:
    await say(server, sessions, "王芳", "请问几点开门？")
    assert await replies_to(sessions, "王芳") == ["小禾：门店每天 8:00 开门。"]


async def test_the_bot_answers_at_most_three_times_in_ten_minutes(
    server: RunningServer, sessions: SessionFactory
) -> None:
    await say(server, sessions, "李娜", "你好", "早", "哈喽", "嗨", "早上好")
    replies = await replies_to(sessions, "李娜")
    # Three answers, then one short notice (not silence), then quiet.
    assert len(replies) == 4 and "消息我都记下了" in replies[3]
    # Ten minutes on, the budget is back.
    async with sessions() as session, session.begin():
        await session.execute(update(OutboxEntry).values(created_at=OutboxEntry.created_at - timedelta(minutes=11)))
    await say(server, sessions, "李娜", "我回来了")
    assert len(await replies_to(sessions, "李娜")) == 5


async def test_another_bot_and_our_own_words_echoed_get_no_answer(
    server: RunningServer, sessions: SessionFactory
) -> None:
    await say(server, sessions, "友商机器人", "您好，欢迎光临！")
    assert await replies_to(sessions, "友商机器人") == []
    await say(server, sessions, "赵敏", "几点开门")
    [answer] = await replies_to(sessions, "赵敏")
    await say(server, sessions, "赵敏", answer)  # a bot repeating us back
    assert await replies_to(sessions, "赵敏") == [answer]


async def test_outside_office_hours_the_persona_says_when_people_are_back(
    db_url: str, tmp_path: Path, http: aiohttp.ClientSession, sessions: SessionFactory
) -> None:
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    opens = (now + timedelta(hours=2)).replace(minute=0)
    closes = opens + timedelta(hours=1)
    hours = f"""
[replies.office_hours]
start = "{opens:%H:%M}"
end = "{closes:%H:%M}"
"""
    server = await start(tmp_path, db_url, http, hours)
    try:
        await say(server, sessions, "周洁", "你好")
        await say(server, sessions, "周洁", "营业时间是？")
    finally:
        await server.stop()
    out_of_hours, faq = await replies_to(sessions, "周洁")
    assert "下班" in out_of_hours and opens.strftime("%H:%M") in out_of_hours
    assert faq == "小禾：门店每天 8:00 开门。"  # the persona still answers what it knows


async def give_owner(sessions: SessionFactory, member: str) -> Staff:
    async with sessions() as session, session.begin():
        store = Store(code="jingan", name="静安店")
        session.add(store)
        await session.flush()
        staff = Staff(userid="zhangsan", name="张三", store_id=store.id)
        session.add(staff)
        await session.flush()
        found = await member_by_identity(session, "sandbox", member)
        assert found is not None
        await session.execute(
            update(Member).where(Member.id == found.id).values(owner_staff_id=staff.id, store_id=store.id)
        )
        return staff


async def tasks(sessions: SessionFactory) -> list[StaffTask]:
    async with sessions() as session:
        return list((await session.execute(select(StaffTask).order_by(StaffTask.id))).scalars())


async def prompts(sessions: SessionFactory, userid: str) -> list[str]:
    async with sessions() as session:
        rows = await session.execute(
            select(OutboxEntry.body).where(OutboxEntry.kind == "staff_prompt", OutboxEntry.recipient == userid)
        )
        return list(rows.scalars())


async def test_a_complaint_goes_to_the_owner_with_the_conversation_and_she_is_told_once(
    server: RunningServer, sessions: SessionFactory
) -> None:
    await say(server, sessions, "孙丽", "上周买的吐司")
    staff = await give_owner(sessions, "孙丽")
    await say(server, sessions, "孙丽", "吃出了头发，我要投诉")

    [task] = await tasks(sessions)
    assert task.kind == "handoff_reply" and task.staff_id == staff.id and task.status == "open"
    assert "上周买的吐司" in task.body and "我要投诉" in task.body and f"完成 {task.id}" in task.body
    [prompt] = await prompts(sessions, "zhangsan")
    assert prompt == task.body
    replies = await replies_to(sessions, "孙丽")
    assert len(replies) == 2 and "张三亲自来回复你" in replies[1]

    # While a person is on it the persona keeps quiet; her words are added to the task.
    await say(server, sessions, "孙丽", "有人吗？")
    assert len(await replies_to(sessions, "孙丽")) == 2
    [task] = await tasks(sessions)
    assert "有人吗？" in task.body
    assert len(await prompts(sessions, "zhangsan")) == 1

    # Once it is done, a new complaint is a new hand-off.
    async with sessions() as session, session.begin():
        await session.execute(update(StaffTask).values(status="done"))
    await say(server, sessions, "孙丽", "还是要退款")
    assert [t.status for t in await tasks(sessions)] == ["done", "open"]
    assert len(await replies_to(sessions, "孙丽")) == 3


async def test_a_question_nothing_understands_is_handed_off_without_an_owner(
    server: RunningServer, sessions: SessionFactory
) -> None:
    await say(server, sessions, "吴静", "你们的储值卡可以转给家人用吗？")
    [task] = await tasks(sessions)
    assert task.staff_id is None and task.note == "unanswered question"
    [notice] = await replies_to(sessions, "吴静")
    assert "店里的同事" in notice


async def test_a_hand_off_without_an_owner_goes_to_the_store_manager_else_the_default_and_faq_still_answers(
    db_url: str, tmp_path: Path, http: aiohttp.ClientSession, sessions: SessionFactory
) -> None:
    async with sessions() as session, session.begin():
        store = Store(code="xuhui", name="徐汇店")
        session.add(store)
        await session.flush()
        session.add_all([Staff(userid="manager", name="店长", store_id=store.id, role="manager"),
                         Staff(userid="duty", name="值班运营")])
    server = await start(tmp_path, db_url, http, '\n[handoff]\ndefault_staff = "duty"\n')
    try:
        await say(server, sessions, "新会员", "你好")
        async with sessions() as session, session.begin():
            found = await member_by_identity(session, "sandbox", "新会员")
            assert found is not None
            await session.execute(update(Member).where(Member.id == found.id).values(store_id=store.id))
        await say(server, sessions, "新会员", "我要投诉")
        await say(server, sessions, "无门店", "我要投诉")
        [with_store, without] = await tasks(sessions)
        async with sessions() as session:
            manager = (await session.execute(select(Staff).where(Staff.userid == "manager"))).scalars().one()
            duty = (await session.execute(select(Staff).where(Staff.userid == "duty"))).scalars().one()
        assert with_store.staff_id == manager.id and without.staff_id == duty.id
        assert len(await prompts(sessions, "manager")) == 1 and len(await prompts(sessions, "duty")) == 1

        # While the person is on it, the persona stays quiet on chat but still answers a fact.
        before = len(await replies_to(sessions, "新会员"))
        await say(server, sessions, "新会员", "有人吗？")
        assert len(await replies_to(sessions, "新会员")) == before
        await say(server, sessions, "新会员", "几点开门？")
        replies = await replies_to(sessions, "新会员")
        assert len(replies) == before + 1 and replies[-1] == "小禾：门店每天 8:00 开门。"
    finally:
        await server.stop()
