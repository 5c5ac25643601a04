"""Staff commands end to end: a staff member writes in the sandbox staff panel, tasks
change, and the answer comes back to that staff member only."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from storage.engine import SessionFactory
from storage.models import LayerAssignment, Member, OutboxEntry, Staff, StaffTask, Store, utcnow
from storage.tags import apply_tag, ensure_tag
from tests.conftest import RunningServer
from tests.test_tagging_flow import all_handled


async def seed(sessions: SessionFactory) -> dict[str, int]:
    """A store with two staff, a manager, a member each, and a task each."""
    async with sessions() as session, session.begin():
        store = Store(code="jingan", name="静安店")
        session.add(store)
        await session.flush()
        people = {
            userid: Staff(userid=userid, name=name, store_id=store.id, role=role)
            for userid, name, role in [("zhangsan", "张三", "staff"), ("lisi", "李四", "staff"), ("boss", "王店长", "manager")]
        }
        session.add_all(people.values())
        await session.flush()
        fang = Member(name="王芳", phone="13812345678", owner_staff_id=people["zhangsan"].id, store_id=store.id,
                      birth_month=12, birth_day=1, member_since=date(2024, 3, 1))
        na = Member(name="李娜", phone="13900001111", owner_staff_id=people["lisi"].id, store_id=store.id)
        session.add_all([fang, na])
        await session.flush()
        assert fang.id is not None
        await apply_tag(session, fang.id, await ensure_tag(session, "蛋糕控", "口味偏好"), "rule", "cake", utcnow())
        session.add(LayerAssignment(member_id=fang.id, scheme="value", layer="super"))
        tasks = {
            userid: StaffTask(dedupe_key=f"t-{userid}", staff_id=people[userid].id, member_id=member.id,
                              kind="birthday_gift", title=f"{member.name}的生日", due_date=date(2026, 12, 1))
            for userid, member in (("zhangsan", fang), ("lisi", na))
        }
        session.add_all(tasks.values())
        await session.flush()
        return {userid: task.id for userid, task in tasks.items() if task.id is not None}


async def command(server: RunningServer, sessions: SessionFactory, userid: str, text: str) -> str:
    """Send `text` as the staff member; return the bot's answer to them."""
    async with server.client.post(f"{server.base}/sandbox/messages", json={"staff": userid, "text": text}) as response:
        assert response.status == 202, await response.text()
    await all_handled(sessions)
    async with sessions() as session:
        rows = await session.execute(
            select(OutboxEntry.body)
            .where(OutboxEntry.kind == "staff_prompt", OutboxEntry.recipient == userid)
            .order_by(OutboxEntry.id.desc())  # type: ignore[union-attr]
        )
        return rows.scalars().first() or ""


async def task(sessions: SessionFactory, task_id: int) -> StaffTask:
    async with sessions() as session:
        found = await session.get(StaffTask, task_id)
        assert found is not None
        return found


async def test_done_and_skip_close_ones_own_tasks(server: RunningServer, sessions: SessionFactory) -> None:
    ids = await seed(sessions)
    answer = await command(server, sessions, "zhangsan", f"完成 {ids['zhangsan']}")
    assert f"任务 #{ids['zhangsan']}" in answer and "已完成" in answer
    done = await task(sessions, ids["zhangsan"])
    assert done.status == "done" and done.done_at is not None

    again = await command(server, sessions, "zhangsan", f"done {ids['zhangsan']}")
    assert "已经完成了" in again

    no_reason = await command(server, sessions, "lisi", f"跳过 {ids['lisi']}")
    assert "需要写原因" in no_reason and (await task(sessions, ids["lisi"])).status == "open"
    await command(server, sessions, "lisi", f"skip {ids['lisi']} 客户出国了")
    skipped = await task(sessions, ids["lisi"])
    assert skipped.status == "skipped" and skipped.note == "客户出国了"


async def test_a_wrong_task_id_and_another_staffs_task_change_nothing(
    server: RunningServer, sessions: SessionFactory
) -> None:
    ids = await seed(sessions)
    assert "没有找到任务 #99999" in await command(server, sessions, "zhangsan", "完成 99999")
    refused = await command(server, sessions, "zhangsan", f"完成 {ids['lisi']}")
    assert "不是你的任务" in refused and "李四" in refused
    assert (await task(sessions, ids["lisi"])).status == "open"
    # The store manager may close the tasks of the store's staff.
    await command(server, sessions, "boss", f"完成 {ids['lisi']}")
    assert (await task(sessions, ids["lisi"])).status == "done"


async def test_find_returns_a_member_card_within_ones_own_members(
    server: RunningServer, sessions: SessionFactory
) -> None:
    await seed(sessions)
    card = await command(server, sessions, "zhangsan", "查 5678")
    assert "王芳" in card and "138****5678" in card and "13812345678" not in card
    assert "蛋糕控" in card and "价值分层：超级用户" in card and "value=super" not in card and "下一个关怀日：" in card
    assert "生日" in card or "入会周年" in card
    assert "没有找到" in await command(server, sessions, "zhangsan", "查 李娜")  # 李四's member
    assert "李娜" in await command(server, sessions, "boss", "查李娜")  # the manager sees the store


async def test_unknown_words_get_help_and_tasks_lists_open_tasks(
    server: RunningServer, sessions: SessionFactory
) -> None:
    ids = await seed(sessions)
    help_text = await command(server, sessions, "zhangsan", "今天下雨吗")
    assert "没看懂「今天下雨吗」" in help_text and "完成 <任务号>" in help_text
    listing = await command(server, sessions, "zhangsan", "任务")
    assert f"#{ids['zhangsan']}" in listing and "王芳的生日" in listing and f"#{ids['lisi']}" not in listing
