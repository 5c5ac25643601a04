"""Work handed over when people change: a staff member leaves (WeCom's contacts callback,
or `siyu tasks reassign` by hand), a customer is transferred to a colleague, a transfer
fails."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.cli.main import main
from bot.platforms.wecom.updates import to_update
from handlers.updates import EventUpdate
from storage.engine import SessionFactory, create_database_engine, session_factory
from storage.models import InboxEntry, Member, OutboxEntry, Staff, StaffTask, Store
from tests.conftest import eventually, write_config
from tests.test_wecom_flow import ALICE, member
from tests.wecom_harness import CORP, SEND, Corp, contact_event

TODAY = date.today()


def staff_deleted(userid: str, created: int | None = None) -> str:
    """WeCom's 成员变更通知 for a deleted member (developer.work.weixin.qq.com/document/path/90970)."""
    return (
        f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{created or int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[change_contact]]></Event><ChangeType>delete_user</ChangeType>"
        f"<UserID><![CDATA[{userid}]]></UserID></xml>"
    )


async def seed(sessions: SessionFactory) -> dict[str, int]:
    """静安店: manager boss, staff zhangsan (members 王芳, 李娜); 徐汇店: lisi (赵雪), no manager.
    zhangsan has two open tasks and a done one; lisi one open task."""
    async with sessions() as session, session.begin():
        jingan, xuhui = Store(code="jingan", name="静安店"), Store(code="xuhui", name="徐汇店")
        session.add_all([jingan, xuhui])
        await session.flush()
        boss = Staff(userid="boss", name="王店长", store_id=jingan.id, role="manager")
        zhang = Staff(userid="zhangsan", name="张三", store_id=jingan.id)
        li = Staff(userid="lisi", name="李四", store_id=xuhui.id)
        session.add_all([boss, zhang, li])
        await session.flush()
        fang = Member(name="王芳", store_id=jingan.id, owner_staff_id=zhang.id)
        na = Member(name="李娜", store_id=jingan.id, owner_staff_id=zhang.id)
        xue = Member(name="赵雪", store_id=xuhui.id, owner_staff_id=li.id)
        session.add_all([fang, na, xue])
        await session.flush()
        tasks = {
            "gift": StaffTask(dedupe_key="t:gift", staff_id=zhang.id, member_id=fang.id, kind="care",
                              title="王芳 生日：送一束花", due_date=TODAY + timedelta(days=1)),
            "call": StaffTask(dedupe_key="t:call", staff_id=zhang.id, member_id=na.id, kind="churn_follow_up",
                              title="流失回访：李娜", due_date=TODAY),
            "done": StaffTask(dedupe_key="t:done", staff_id=zhang.id, member_id=fang.id, kind="care",
                              title="已做完", due_date=TODAY, status="done"),
            "lisi": StaffTask(dedupe_key="t:lisi", staff_id=li.id, member_id=xue.id, kind="care",
                              title="赵雪 回访", due_date=TODAY),
        }
        session.add_all(tasks.values())
        await session.flush()
        return {"boss": boss.id, "zhangsan": zhang.id, "lisi": li.id, "王芳": fang.id, "李娜": na.id,  # type: ignore[dict-item]
                "赵雪": xue.id} | {f"task:{k}": t.id for k, t in tasks.items()}  # type: ignore[misc]


async def owners(sessions: SessionFactory) -> tuple[dict[str, int | None], dict[str, int | None], dict[str, bool]]:
    """Each task's staff id (by dedupe key), each member's owner (by name), who is active."""
    async with sessions() as session:
        tasks = dict((await session.execute(select(StaffTask.dedupe_key, StaffTask.staff_id))).all())
        members = dict((await session.execute(select(Member.name, Member.owner_staff_id))).all())
        active = dict((await session.execute(select(Staff.userid, Staff.active))).all())
    return tasks, members, active  # type: ignore[return-value]


async def staff_prompts(sessions: SessionFactory) -> int:
    async with sessions() as session:
        statement = select(func.count()).select_from(OutboxEntry).where(OutboxEntry.kind == "staff_prompt")
        return int((await session.execute(statement)).scalar_one())


async def settled(sessions: SessionFactory) -> bool:
    async with sessions() as session:
        statuses = (await session.execute(select(InboxEntry.status))).scalars().all()
    return bool(statuses) and all(s != "pending" for s in statuses)


def test_the_contacts_callback_for_a_deleted_member_is_a_staff_left_event() -> None:
    fields = {"ToUserName": CORP, "FromUserName": "sys", "CreateTime": "1403610513", "MsgType": "event",
              "Event": "change_contact", "ChangeType": "delete_user", "UserID": "zhangsan"}
    update = to_update(fields)
    assert isinstance(update, EventUpdate)
    assert (update.event, update.sender, update.actor, update.platform) == ("staff_left", "zhangsan", "system", "wecom")
    assert update.key == "wecom:change_contact:delete_user:zhangsan:1403610513"
    assert to_update(fields | {"UserID": "lisi"}).key != update.key


async def test_a_staff_member_who_leaves_hands_tasks_and_members_to_the_manager_once(corp: Corp) -> None:
    ids = await seed(corp.sessions)
    corp.cloud.add_staff("boss")
    query, body = corp.envelope(staff_deleted("zhangsan"))
    assert (await corp.post(query, body))[0] == 200

    async def gone() -> bool:
        return not (await owners(corp.sessions))[2]["zhangsan"]

    await eventually(gone)
    tasks, members, active = await owners(corp.sessions)
    assert (tasks["t:gift"], tasks["t:call"]) == (ids["boss"], ids["boss"])
    assert tasks["t:done"] == ids["zhangsan"]  # done work is not rewritten
    assert tasks["t:lisi"] == ids["lisi"]
    assert members == {"王芳": ids["boss"], "李娜": ids["boss"], "赵雪": ids["lisi"]}
    assert active == {"boss": True, "zhangsan": False, "lisi": True}

    async def prompted() -> bool:
        return len(corp.cloud.deliveries(SEND)) >= 1

    await eventually(prompted)
    (prompt,) = corp.cloud.deliveries(SEND)
    text = prompt.body["text"]["content"]
    assert prompt.to == "boss" and "【工作交接】张三已离开" in text and "2 个待办任务和 2 位客户" in text
    assert text.index("流失回访：李娜") < text.index("王芳 生日：送一束花")  # the earliest due first

    # WeCom delivers the same callback again, and later re-sends the news: nothing changes.
    assert (await corp.post(query, body))[0] == 200
    assert await corp.inbox_rows() == 1
    await corp.callback(staff_deleted("zhangsan", created=int(time.time()) + 5))
    await eventually(lambda: settled(corp.sessions))
    assert await corp.inbox_rows() == 2
    assert await owners(corp.sessions) == (tasks, members, active)
    assert await staff_prompts(corp.sessions) == 1 and len(corp.cloud.deliveries(SEND)) == 1


async def test_without_a_manager_to_take_over_the_work_shows_unassigned_and_nobody_is_prompted(corp: Corp) -> None:
    ids = await seed(corp.sessions)
    await corp.callback(staff_deleted("lisi"))
    await eventually(lambda: settled(corp.sessions))
    tasks, members, active = await owners(corp.sessions)
    assert tasks["t:lisi"] is None and members["赵雪"] is None and active["lisi"] is False
    assert tasks["t:gift"] == ids["zhangsan"]
    assert await staff_prompts(corp.sessions) == 0


async def customer_of_zhangsan(corp: Corp) -> dict[str, int]:
    """王芳 (ALICE on WeCom) added by zhangsan, with an open and a done task of his."""
    ids = await seed(corp.sessions)
    corp.cloud.add_contact("zhangsan", ALICE, "王芳")
    await corp.callback(contact_event("add_external_contact", ALICE))

    async def named() -> bool:  # the profile fetch has come back
        found = await member(corp, ALICE)
        return found is not None and found.name == "王芳"

    await eventually(named)
    found = await member(corp, ALICE)
    assert found is not None and found.id is not None and found.owner_staff_id == ids["zhangsan"]
    async with corp.sessions() as session, session.begin():
        session.add_all([
            StaffTask(dedupe_key="w:open", staff_id=ids["zhangsan"], member_id=found.id, kind="handoff_reply",
                      title="人工回复：王芳", due_date=TODAY),
            StaffTask(dedupe_key="w:done", staff_id=ids["zhangsan"], member_id=found.id, kind="care",
                      title="生日祝福", due_date=TODAY, status="done"),
        ])
    return ids


async def test_a_transferred_customer_takes_her_open_tasks_to_the_new_owner(corp: Corp) -> None:
    ids = await customer_of_zhangsan(corp)
    # 在职继承: WeCom removes her from zhangsan and adds her to lisi.
    corp.cloud.remove_contact("zhangsan", ALICE)
    corp.cloud.add_contact("lisi", ALICE, "王芳")
    await corp.callback(contact_event("del_external_contact", ALICE, "zhangsan", Source="DELETE_BY_TRANSFER"))
    await corp.callback(contact_event("add_external_contact", ALICE, "lisi"))

    async def moved() -> bool:
        found = await member(corp, ALICE)
        return found is not None and found.owner_staff_id == ids["lisi"]

    await eventually(moved)
    await eventually(lambda: settled(corp.sessions))
    tasks, _, _ = await owners(corp.sessions)
    assert tasks["w:open"] == ids["lisi"] and tasks["w:done"] == ids["zhangsan"]
    assert tasks["t:gift"] == ids["zhangsan"]  # another member's task stays
    async with corp.sessions() as session:
        churn = (await session.execute(select(StaffTask).where(StaffTask.kind == "churn_follow_up"))).scalars().all()
    assert [t.title for t in churn] == ["流失回访：李娜"]  # the seeded one: a transfer is not churn
    assert await staff_prompts(corp.sessions) == 0


async def test_a_failed_transfer_keeps_her_with_her_owner_who_is_told_why(corp: Corp) -> None:
    ids = await customer_of_zhangsan(corp)
    await corp.callback(contact_event("transfer_fail", ALICE, "lisi", FailReason="customer_refused"))

    async def prompted() -> bool:
        return len(corp.cloud.deliveries(SEND)) >= 1

    await eventually(prompted)
    (prompt,) = corp.cloud.deliveries(SEND)
    text = prompt.body["text"]["content"]
    assert prompt.to == "zhangsan" and "【客户转接失败】王芳没有转给李四" in text and "客户拒绝了转接" in text
    found = await member(corp, ALICE)
    assert found is not None and found.owner_staff_id == ids["zhangsan"]
    tasks, _, _ = await owners(corp.sessions)
    assert tasks["w:open"] == ids["zhangsan"]

    await corp.callback(contact_event("transfer_fail", ALICE, "lisi", created=int(time.time()) + 7,
                                      FailReason="customer_limit_exceed"))
    await eventually(lambda: prompted_twice(corp))
    assert "李四的客户数已达上限" in corp.cloud.deliveries(SEND)[1].body["text"]["content"]


async def prompted_twice(corp: Corp) -> bool:
    return len(corp.cloud.deliveries(SEND)) >= 2


# -- siyu tasks reassign ----------------------------------------------------------------

def with_sessions(url: str, work):  # type: ignore[no-untyped-def]
    async def run():  # type: ignore[no-untyped-def]
        engine = create_database_engine(url)
        try:
            return await work(session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_tasks_reassign_hands_work_to_the_manager_and_prompts_her(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path, db_url))
    ids = with_sessions(db_url, seed)
    assert main(["tasks", "reassign", "--from", "zhangsan", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "zhangsan (张三) is now inactive: 2 open task(s) and 2 member(s) moved to boss (王店长)" in out
    assert "流失回访：李娜" in out and "王芳 生日：送一束花" in out and "已做完" not in out

    tasks, members, active = with_sessions(db_url, owners)
    assert (tasks["t:gift"], tasks["t:call"], tasks["t:done"]) == (ids["boss"], ids["boss"], ids["zhangsan"])
    assert members["王芳"] == members["李娜"] == ids["boss"] and active["zhangsan"] is False

    async def prompts(sessions: SessionFactory) -> list[OutboxEntry]:
        async with sessions() as session:
            return list((await session.execute(select(OutboxEntry))).scalars())

    (prompt,) = with_sessions(db_url, prompts)
    assert (prompt.platform, prompt.recipient, prompt.kind) == ("sandbox", "boss", "staff_prompt")
    assert "【工作交接】张三已离开" in prompt.body and json.loads(prompt.meta)["link"] == "/admin/tasks"


def test_tasks_reassign_to_a_named_colleague_and_its_refusals(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path, db_url))
    ids = with_sessions(db_url, seed)
    assert main(["tasks", "reassign", "--from", "nobody", "--config", config]) == 1
    assert "no staff member 'nobody'; nothing moved" in capsys.readouterr().err
    # 徐汇店 has no manager: she must be named.
    assert main(["tasks", "reassign", "--from", "lisi", "--config", config]) == 1
    assert "--to USERID" in capsys.readouterr().err
    assert main(["tasks", "reassign", "--from", "lisi", "--to", "lisi", "--config", config]) == 1
    capsys.readouterr()
    assert with_sessions(db_url, owners)[2]["lisi"] is True  # nothing moved

    assert main(["tasks", "reassign", "--from", "lisi", "--to", "zhangsan", "--json", "--config", config]) == 0
    moved = json.loads(capsys.readouterr().out)
    assert (moved["from"], moved["to"], moved["tasks"], moved["members"]) == ("lisi", "zhangsan", 1, 1)
    assert [t["title"] for t in moved["moved_tasks"]] == ["赵雪 回访"]
    tasks, members, active = with_sessions(db_url, owners)
    assert tasks["t:lisi"] == ids["zhangsan"] and members["赵雪"] == ids["zhangsan"] and active["lisi"] is False
    # Work never goes to someone who has left.
    assert main(["tasks", "reassign", "--from", "zhangsan", "--to", "lisi", "--config", config]) == 1
    assert "lisi cannot take over: inactive" in capsys.readouterr().err
