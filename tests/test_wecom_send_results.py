"""Who a WeCom mass send or Moments post reached, read back from the fake cloud as
touches of its calendar entry: only customers it reached (mass-send status 1, at its
send_time), once however often it is read, and an order after it credited to the entry
in `siyu outcomes report`."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.cli.main import main
from bot.platforms.wecom.keys import WECOM_CLIENT
from bot.platforms.wecom.send_results import MOMENT_SEND_RESULT, SEND_RESULT, read_mass_send_results
from bot.shared.keys import DELIVERY
from scheduler.moment_reads import queue_moment_reads
from storage.models import CalendarEntry, LayerAssignment, Member, MemberIdentity, Order, OutboxEntry, Staff, utcnow
from storage.outbox import NewOutboxMessage, enqueue
from storage.outcome_models import OutcomeTouch
from tests.conftest import eventually
from tests.test_wecom_moments import deliver_due
from tests.wecom_harness import Corp

ALICE = "wmAJ2GCAAAXtWyujaWJHDDGi0mAAAA"  # reached
BOB = "wmAJ2GCAAAXtWyujaWJHDDGi0mBBBB"  # had another mass message today: status 3
CAROL = "wmAJ2GCAAAXtWyujaWJHDDGi0mCCCC"  # deleted her before she confirmed: status 2
DAVE = "wmAJ2GCAAAXtWyujaWJHDDGi0mDDDD"  # reached
OTHERS = [f"wmFILLER{n:05d}" for n in range(1200)]  # her customers, not our members: a second page
SHANGHAI = ZoneInfo("Asia/Shanghai")


async def seed(corp: Corp) -> dict[str, int]:
    """张三 and four members of hers on WeCom, in the value scheme's 活跃 layer."""
    ids: dict[str, int] = {}
    async with corp.sessions() as session, session.begin():
        staff = Staff(userid="zhangsan", name="张三")
        session.add(staff)
        await session.flush()
        assert staff.id is not None
        ids["zhangsan"] = staff.id
        for name, external in (("王芳", ALICE), ("李娜", BOB), ("陈静", CAROL), ("赵雪", DAVE)):
            member = Member(name=name, owner_staff_id=staff.id)
            session.add(member)
            await session.flush()
            assert member.id is not None
            ids[external] = member.id
            session.add_all([MemberIdentity(member_id=member.id, platform="wecom", external_id=external),
                             LayerAssignment(member_id=member.id, scheme="value", layer="active")])
        session.add(CalendarEntry(id="new-season", at=utcnow(), audience=json.dumps({"everyone": True}),
                                  template="calendar/new_season.txt.j2", channel="wecom_mass", title="新品季"))
    for external in (ALICE, BOB, CAROL, DAVE, *OTHERS):
        corp.cloud.add_contact("zhangsan", external, external[-4:])
    return ids


async def touches(corp: Corp) -> list[OutcomeTouch]:
    async with corp.sessions() as session:
        return list((await session.execute(select(OutcomeTouch).order_by(OutcomeTouch.member_id))).scalars())


async def test_a_mass_send_becomes_touches_of_those_it_reached_once_and_the_order_after_is_credited(
    corp: Corp, tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = await seed(corp)
    async with corp.sessions() as session, session.begin():
        await enqueue(session, [NewOutboxMessage(
            "cal:new-season:s:zhangsan", "wecom", "zhangsan", "marketing", "换季啦，新品上架", staff_id=ids["zhangsan"],
            route="mass_send", meta=json.dumps({"chat_type": "single", "entry": "new-season",
                                                "external_userid": [ALICE, BOB, CAROL, DAVE, *OTHERS]}))], utcnow())
    corp.server.app[DELIVERY].wake()

    async def sent() -> bool:
        async with corp.sessions() as session:
            return (await session.execute(select(OutboxEntry.status))).scalar_one() == "sent"
    await eventually(sent)
    # An older send WeCom no longer knows (invalid msgid): refused, logged, the others still read.
    async with corp.sessions() as session, session.begin():
        session.add(OutboxEntry(dedupe_key="cal:old:s:zhangsan", platform="wecom", recipient="zhangsan",
                                staff_id=ids["zhangsan"], kind="marketing", route="mass_send", body="旧的", status="sent",
                                meta=json.dumps({"chat_type": "single", "entry": "old", "msgid": "msgGoneLongAgo"})))
    client = corp.server.app[WECOM_CLIENT]
    # Not confirmed yet: every target is status 0, nobody is touched.
    assert await read_mass_send_results(client, corp.sessions, utcnow(), 7) == 0
    assert await touches(corp) == []

    (task,) = corp.cloud.mass_templates
    corp.cloud.mass_receive_cap = 1
    corp.cloud.customer_received_mass(BOB)
    corp.cloud.remove_contact("zhangsan", CAROL)
    corp.cloud.confirm_mass_send(task.msgid, "zhangsan")
    assert {t: task.results[t] for t in (ALICE, BOB, CAROL, DAVE)} == {ALICE: 1, BOB: 3, CAROL: 2, DAVE: 1}

    calls = len(corp.cloud.calls_to(SEND_RESULT))
    assert await read_mass_send_results(client, corp.sessions, utcnow(), 7) == 2
    pages = [c for c in corp.cloud.calls_to(SEND_RESULT)[calls:] if c.json["msgid"] == task.msgid]
    assert [c.json.get("cursor", "") for c in pages] == ["", "1000"]  # 1,204 targets: two pages
    assert any(c.json["msgid"] == "msgGoneLongAgo" for c in corp.cloud.calls_to(SEND_RESULT)[calls:])  # asked, refused
    assert await read_mass_send_results(client, corp.sessions, utcnow(), 7) == 0  # read again: nothing new
    found = await touches(corp)
    assert [(t.member_id, t.source_kind, t.source_ref, t.staff_id, t.layer, t.held_out) for t in found] == [
        (ids[ALICE], "entry", "new-season", ids["zhangsan"], "active", False),
        (ids[DAVE], "entry", "new-season", ids["zhangsan"], "active", False)]
    assert [t.at.replace(tzinfo=timezone.utc) for t in found] == [
        datetime.fromtimestamp(task.sent_at[e], timezone.utc) for e in (ALICE, DAVE)]  # at its send_time
    # A send older than the days read back is left alone.
    assert await read_mass_send_results(client, corp.sessions, utcnow() + timedelta(days=8), 7) == 0

    # 王芳 buys the next hour: the order is the entry's, by name, in the report.
    async with corp.sessions() as session, session.begin():
        session.add(Order(order_no="A-1", member_id=ids[ALICE], amount_cents=5800, ordered_at=utcnow() + timedelta(hours=1)))
    today = datetime.now(SHANGHAI).date().isoformat()
    config = str(tmp_path / "siyu.toml")  # type: ignore[operator]
    assert await asyncio.to_thread(main, ["outcomes", "report", "--by", "entry", "--from", today, "--to", today,
                                          "--json", "--config", config]) == 0
    [row] = json.loads(capsys.readouterr().out)["rows"]
    assert (row["key"], row["label"], row["reached"]["members"], row["reached"]["converted"]) == (
        "new-season", "新品季", 2, 1)
    assert (row["credited_orders"], row["credited_yuan"]) == (1, 58.0)


async def test_a_moments_post_is_a_touch_of_each_customer_it_reached_once(corp: Corp) -> None:
    ids = await seed(corp)
    async with corp.sessions() as session, session.begin():
        await enqueue(session, [NewOutboxMessage(
            "cal:new-season:moments", "wecom", "moments", "marketing", "春天来了", route="moment_task",
            meta=json.dumps({"entry": "new-season", "title": "新品季", "tags": [], "images": [], "link": None,
                             "senders": ["zhangsan"]}))], utcnow())
    await deliver_due(corp.server, corp.sessions)
    (moment_id,) = corp.cloud.moments
    # Read before she publishes: nobody has seen it.
    await queue_moment_reads(corp.sessions, utcnow(), 7)
    await deliver_due(corp.server, corp.sessions)
    assert await touches(corp) == []

    # She shows it to 王芳, 李娜 and 陈静; 陈静 deleted her since, so it reaches two.
    corp.cloud.remove_contact("zhangsan", CAROL)
    corp.cloud.staff_publishes(moment_id, "zhangsan", customers=[ALICE, BOB, CAROL])
    for _ in range(2):  # read twice: once each
        await queue_moment_reads(corp.sessions, utcnow(), 7)
        await deliver_due(corp.server, corp.sessions)
    found = await touches(corp)
    assert [(t.member_id, t.source_kind, t.source_ref, t.staff_id, t.ref) for t in found] == [
        (ids[ALICE], "entry", "new-season", ids["zhangsan"], f"moment:{moment_id}:{ALICE}"),
        (ids[BOB], "entry", "new-season", ids["zhangsan"], f"moment:{moment_id}:{BOB}")]
    assert all(c.json["userid"] == "zhangsan" for c in corp.cloud.calls_to(MOMENT_SEND_RESULT))
