"""Staff on WeCom: a complaint in WeChat Customer Service reaches the owner as an app
message, and the owner closes the task by writing to the app."""

from __future__ import annotations

import time

from sqlalchemy import select

from storage.models import Staff, StaffTask
from tests.conftest import eventually
from tests.test_wecom_flow import ALICE, kf_event, member
from tests.wecom_harness import CORP, KF_SEND, SEND, Corp, contact_event

KF = "wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q"


def app_text(staff: str, text: str, msgid: int) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[{staff}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{text}]]></Content><MsgId>{msgid}</MsgId><AgentID>1000002</AgentID></xml>"
    )


async def test_a_complaint_reaches_the_owner_in_wecom_who_closes_it_by_command(corp: Corp) -> None:
    corp.cloud.add_contact("zhangsan", ALICE, "王芳")
    await corp.callback(contact_event("add_external_contact", ALICE))

    async def owned() -> bool:
        found = await member(corp, ALICE)
        return found is not None and found.owner_staff_id is not None

    await eventually(owned)
    token = corp.cloud.customer_writes(KF, ALICE, "面包发霉了，我要退款")
    await corp.callback(kf_event(token))

    await eventually(lambda: _at_least(corp.cloud.deliveries(SEND), 1))
    (prompt,) = corp.cloud.deliveries(SEND)
    assert prompt.to == "zhangsan" and "面包发霉了，我要退款" in prompt.body["text"]["content"]
    await eventually(lambda: _at_least(corp.cloud.deliveries(KF_SEND), 1))
    (notice,) = corp.cloud.deliveries(KF_SEND)
    assert notice.to == ALICE and "亲自来回复你" in notice.body["text"]["content"]
    async with corp.sessions() as session:
        (task,) = (await session.execute(select(StaffTask).where(StaffTask.kind == "handoff_reply"))).scalars().all()
    assert f"完成 {task.id}" in prompt.body["text"]["content"]

    assert (await corp.callback(app_text("zhangsan", f"完成 {task.id}", 7001)))[0] == 200
    await eventually(lambda: _at_least(corp.cloud.deliveries(SEND), 2))
    answer = corp.cloud.deliveries(SEND)[1]
    assert answer.to == "zhangsan" and "已完成" in answer.body["text"]["content"]
    async with corp.sessions() as session:
        closed = await session.get(StaffTask, task.id)
    assert closed is not None and closed.status == "done"


async def test_a_staff_member_not_yet_known_gets_help_and_a_staff_row(corp: Corp) -> None:
    assert (await corp.callback(app_text("lisi", "你好", 7002)))[0] == 200
    await eventually(lambda: _at_least(corp.cloud.deliveries(SEND), 1))
    (answer,) = corp.cloud.deliveries(SEND)
    assert answer.to == "lisi" and "完成 <任务号>" in answer.body["text"]["content"]
    async with corp.sessions() as session:
        (staff,) = (await session.execute(select(Staff).where(Staff.userid == "lisi"))).scalars().all()
        assert (await session.execute(select(StaffTask))).scalars().all() == []
    assert staff.name == "lisi"  # named by the userid until the console names her


async def _at_least(items: list, n: int) -> bool:  # type: ignore[type-arg]
    return len(items) >= n
