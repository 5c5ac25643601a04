"""Content-calendar mass sends end to end: a calendar entry fired into the outbox, the
server's delivery sending it to the fake WeCom as add_msg_template, the staff member
prompted to confirm, WeCom's fail_list noted on the row, and nothing reaching a customer
until she confirms."""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.shared.keys import DELIVERY
from content_templates.renderer import Renderer
from scheduler.calendar_run import CalendarOptions, run_calendar
from storage.models import CalendarEntry, LayerAssignment, Member, MemberIdentity, OutboxEntry, Staff, utcnow
from storage.outbox import NewOutboxMessage, enqueue
from tests.conftest import eventually
from tests.wecom_harness import SEND, Corp

MASS = "/cgi-bin/externalcontact/add_msg_template"
ALICE = "wmAJ2GCAAAXtWyujaWJHDDGi0mAAAA"
BOB = "wmAJ2GCAAAXtWyujaWJHDDGi0mBBBB"
CAROL = "wmAJ2GCAAAXtWyujaWJHDDGi0mCCCC"  # ours, but no longer her customer in WeCom
SHANGHAI = ZoneInfo("Asia/Shanghai")
OPTIONS = CalendarOptions({"name": "小禾", "title": "", "signature": "小禾 · 禾麦烘焙", "default_line": "", "tips": {}})


async def rows(corp: Corp) -> list[OutboxEntry]:
    async with corp.sessions() as session:
        return list((await session.execute(select(OutboxEntry).order_by(OutboxEntry.id))).scalars())


async def settled(corp: Corp) -> bool:
    return all(r.status in ("sent", "failed") for r in await rows(corp))


async def test_a_calendar_mass_send_waits_for_the_staff_members_confirmation(corp: Corp) -> None:
    now = utcnow()
    at = now.replace(second=0, microsecond=0)
    async with corp.sessions() as session, session.begin():
        staff = Staff(userid="zhangsan", name="张三")
        session.add(staff)
        await session.flush()
        for name, external in (("王芳", ALICE), ("李娜", BOB), ("陈静", CAROL)):
            member = Member(name=name, owner_staff_id=staff.id)
            session.add(member)
            await session.flush()
            assert member.id is not None
            session.add_all([MemberIdentity(member_id=member.id, platform="wecom", external_id=external),
                             LayerAssignment(member_id=member.id, scheme="value", layer="super")])
        session.add(CalendarEntry(id="new-season", at=at, audience=json.dumps({"layers": ["super"], "scheme": "value"}),
                                  template="calendar/new_season.txt.j2", channel="wecom_mass", title="新品季"))
    corp.cloud.add_contact("zhangsan", ALICE, "王芳")
    corp.cloud.add_contact("zhangsan", BOB, "李娜")

    report = await run_calendar(corp.sessions, OPTIONS, Renderer(), SHANGHAI, now, since=at - timedelta(minutes=1))
    assert [(f.entry, f.members) for f in report.fired] == [("new-season", 3)]
    corp.server.app[DELIVERY].wake()
    await eventually(lambda: settled(corp))

    mass, prompt = await rows(corp)
    (call,) = corp.cloud.calls_to(MASS)
    assert call.json == {"chat_type": "single", "sender": "zhangsan", "external_userid": [ALICE, BOB, CAROL],
                         "text": {"content": mass.body}}
    (task,) = corp.cloud.mass_templates
    assert (task.sender, task.targets, task.confirmed) == ("zhangsan", [ALICE, BOB], False)
    assert mass.status == "sent" and mass.platform_msg_id == task.msgid
    meta = json.loads(mass.meta)
    assert meta["fail_list"] == [CAROL] and meta["msgid"] == task.msgid and meta["entry"] == "new-season"
    (prompted,) = corp.cloud.deliveries(SEND)
    assert prompted.to == "zhangsan" and "群发待确认" in prompted.body["text"]["content"] and prompt.status == "sent"
    assert corp.cloud.deliveries(MASS) == []  # nothing reaches a customer before she confirms

    delivered = corp.cloud.confirm_mass_send(task.msgid, "zhangsan")
    assert [d.to for d in delivered] == [ALICE, BOB] and task.results == {ALICE: 1, BOB: 1}
    assert delivered[0].body["text"]["content"].startswith("换季啦")  # one text for all: no name in it

    # The same window again: nothing new queued, nothing sent twice.
    await run_calendar(corp.sessions, OPTIONS, Renderer(), SHANGHAI, now, since=at - timedelta(minutes=1))
    corp.server.app[DELIVERY].wake()
    assert len(await rows(corp)) == 2 and len(corp.cloud.calls_to(MASS)) == 1


async def test_mass_send_rows_that_wecom_cannot_take_fail_with_the_reason(corp: Corp) -> None:
    corp.cloud.add_contact("zhangsan", ALICE, "王芳")
    corp.cloud.add_group("wrGroupOne", "新品群", "zhangsan", [ALICE])
    corp.cloud.fail_next(MASS, 41063)  # being dispatched: retried, then taken

    def row(key: str, meta: dict[str, object]) -> NewOutboxMessage:
        return NewOutboxMessage(key, "wecom", "zhangsan", "marketing", "新品到了，有空来看看", route="mass_send",
                                meta=json.dumps(meta))

    async with corp.sessions() as session, session.begin():
        await enqueue(session, [
            row("group", {"chat_type": "group", "chat_id_list": ["wrGroupOne"]}),
            row("nobody", {"chat_type": "single", "external_userid": [CAROL]}),
            row("empty", {"chat_type": "single", "external_userid": []}),
        ], utcnow())
    corp.server.app[DELIVERY].wake()
    await eventually(lambda: settled(corp))

    group, nobody, empty = await rows(corp)
    assert group.status == "sent" and json.loads(group.meta)["fail_list"] == []
    assert [t.targets for t in corp.cloud.mass_templates] == [["wrGroupOne"]]
    assert nobody.status == "failed" and nobody.last_error is not None and "errcode 41048" in nobody.last_error
    # An empty list would mean "all her customers" to WeCom: never sent.
    assert empty.status == "failed" and "without its external_userid list" in str(empty.last_error)
    assert len(corp.cloud.calls_to(MASS)) == 3  # group twice (41063, then taken), nobody once, empty never
    assert corp.cloud.confirm_mass_send(group.platform_msg_id or "") and corp.cloud.delivered_to(MASS) == ["wrGroupOne"]
