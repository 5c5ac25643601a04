"""Outcomes on a real database (SQLite and PostgreSQL): touches and holdouts, orders in
the window after them, the comparison with its interval, last- and first-touch credit,
staff tasks done as touches, and what an outbox row delivered counts as."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from scheduler.lift import Group, lift
from storage.engine import SessionFactory
from storage.models import Member, Order, Staff, StaffTask, Store
from storage.outcome_models import OutcomeTouch
from storage.outcomes import TouchSource, outcome_figures, record_holdouts, record_touch, source_of, sync_task_touches

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc)
WINDOWS = {"entry": 7, "occasion": 7, "staff": 7}


async def members(sessions: SessionFactory, n: int) -> list[int]:
    async with sessions() as session, session.begin():
        store = Store(code="jingan", name="静安店")
        session.add(store)
        await session.flush()
        owner = Staff(userid="zhangsan", name="张三", store_id=store.id)
        session.add(owner)
        await session.flush()
        rows = [Member(name=f"m{i}", owner_staff_id=owner.id, store_id=store.id, member_since=date(2025, 1, 1))
                for i in range(n)]
        session.add_all(rows)
        await session.flush()
        return [m.id for m in rows if m.id is not None]


async def buy(sessions: SessionFactory, member_id: int, at: datetime, cents: int = 5000) -> None:
    async with sessions() as session, session.begin():
        session.add(Order(order_no=f"o{member_id}-{at:%m%d%H%M}", member_id=member_id, amount_cents=cents, ordered_at=at))


async def test_an_entry_with_a_holdout_shows_its_lift_with_an_interval(sessions: SessionFactory) -> None:
    ids = await members(sessions, 200)
    reached, held = ids[:100], ids[100:]
    entry = TouchSource("entry", "new-season")
    async with sessions() as session, session.begin():
        for member_id in reached:
            await record_touch(session, member_id, T0, entry, f"outbox:{member_id}")
        await record_touch(session, reached[0], T0, entry, f"outbox:{reached[0]}")  # the same row again: once
        await record_holdouts(session, held, T0, entry, "cal:new-season:20261102T1000")
    for member_id in reached[:40]:
        await buy(sessions, member_id, T0 + timedelta(days=3))
    for member_id in held[:10]:
        await buy(sessions, member_id, T0 + timedelta(days=3))
    await buy(sessions, reached[50], T0 + timedelta(days=9))  # after the 7-day window: not a conversion
    await buy(sessions, reached[51], T0 - timedelta(days=1))  # before the touch: not one either
    async with sessions() as session:
        [row] = await outcome_figures(session, "entry", T0 - timedelta(days=1), T0 + timedelta(days=1), WINDOWS)
    assert row.key == "new-season"
    assert (row.reached.members, row.reached.converted, row.reached.revenue_cents) == (100, 40, 200_000)
    assert (row.held_out.members, row.held_out.converted, row.held_out.revenue_cents) == (100, 10, 50_000)
    assert (row.credited_orders, row.credited_cents) == (40, 200_000)  # holdouts are never credited
    found = lift(Group(100, 40, 2000.0, [50.0] * 40), Group(100, 10, 500.0, [50.0] * 10))
    assert found.enough and found.significant and found.rate_difference == pytest.approx(0.3)
    # By layer and by store the same touches group otherwise; the store reads as its name.
    async with sessions() as session:
        [by_store] = await outcome_figures(session, "store", T0 - timedelta(days=1), T0 + timedelta(days=1), WINDOWS)
    assert by_store.label == "静安店" and by_store.reached.members == 100


async def test_credit_goes_to_the_last_touch_by_default_or_the_first(sessions: SessionFactory) -> None:
    [her] = await members(sessions, 1)
    async with sessions() as session, session.begin():
        await record_touch(session, her, T0, TouchSource("entry", "new-season"), "outbox:1")
        await record_touch(session, her, T0 + timedelta(days=2), TouchSource("occasion", "birthday"), "outbox:2")
    await buy(sessions, her, T0 + timedelta(days=3), 8800)
    span = (T0 - timedelta(days=1), T0 + timedelta(days=5))
    async with sessions() as session:
        last = await outcome_figures(session, "source", *span, WINDOWS)
        first = await outcome_figures(session, "source", *span, WINDOWS, attribution="first")
    assert {r.key: r.credited_orders for r in last} == {"entry:new-season": 0, "occasion:birthday": 1}
    assert {r.key: r.credited_orders for r in first} == {"entry:new-season": 1, "occasion:birthday": 0}
    # Both touches still count her as converted in their own comparison.
    assert all(r.reached.converted == 1 for r in last)


async def test_a_task_marked_done_is_a_staff_touch_once(sessions: SessionFactory) -> None:
    [her] = await members(sessions, 1)
    async with sessions() as session, session.begin():
        owner = (await session.execute(select(Staff.id))).scalar_one()
        session.add(StaffTask(dedupe_key="care-task:birthday:2026:1", staff_id=owner, member_id=her, kind="care",
                              title="生日关怀", due_date=T0.date(), status="done", done_at=T0))
        session.add(StaffTask(dedupe_key="x", staff_id=owner, member_id=her, kind="care", title="未做",
                              due_date=T0.date(), status="open"))
    async with sessions() as session, session.begin():
        assert await sync_task_touches(session) == 1
    async with sessions() as session, session.begin():
        assert await sync_task_touches(session) == 0
        touch = (await session.execute(select(OutcomeTouch))).scalar_one()
    assert (touch.source_kind, touch.source_ref, touch.staff_id, touch.held_out) == ("staff", "care", owner, False)
    await buy(sessions, her, T0 + timedelta(days=1))
    async with sessions() as session:
        [row] = await outcome_figures(session, "staff", T0 - timedelta(days=1), T0 + timedelta(days=1), WINDOWS)
    assert row.label == "张三" and row.reached.converted == 1 and row.held_out.members == 0


def test_what_a_delivered_row_counts_as() -> None:
    assert source_of("cal:new-season:20261102T1000:m7", "message", {"entry": "new-season"}) == \
        TouchSource("entry", "new-season")
    assert source_of("care:birthday:2026:7", "message", {}) == TouchSource("occasion", "birthday")
    assert source_of("welcome:12:0", "welcome", {"welcome_code": "x"}) == TouchSource("channel", "")
    assert source_of("reply:12:0", "message", {}) == TouchSource("auto_reply", "")
    assert source_of("profile:12:0", "profile", {}) is None  # a request, not a touch


async def test_an_unknown_dimension_is_refused(sessions: SessionFactory) -> None:
    async with sessions() as session:
        with pytest.raises(ValueError, match="unknown dimension"):
            await outcome_figures(session, "weather", T0, T0, WINDOWS)


async def test_a_welcome_is_a_touch_of_the_channel_code_she_came_by(sessions: SessionFactory) -> None:
    from storage.tags import apply_tag, ensure_tag

    [her] = await members(sessions, 1)
    async with sessions() as session, session.begin():
        tag = await ensure_tag(session, "静安海报", "渠道")
        await apply_tag(session, her, tag, "platform", "channel:poster-jingan", T0)
        await record_touch(session, her, T0, TouchSource("channel", ""), "outbox:9")
    await buy(sessions, her, T0 + timedelta(days=1))
    async with sessions() as session:
        [row] = await outcome_figures(session, "channel", T0 - timedelta(days=1), T0 + timedelta(days=1), WINDOWS)
    assert row.key == "poster-jingan" and row.reached.converted == 1
