"""Engagement per layer: the daily snapshot (SQLite and PostgreSQL), `siyu layers show`
and GET /api/engagement through the real server."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.cli.layers import layers_show
from bot.settings.model import Settings
from bot.web.app import build_app
from scheduler.engagement import recent_days, snapshot_engagement, snapshot_recent
from storage.engagement import COUNTERS, NO_LAYER, day_bounds, engagement_series, layer_counts, snapshot_day
from storage.engine import SessionFactory
from storage.models import (
    EngagementDay,
    Interaction,
    LayerAssignment,
    Member,
    Order,
    OutboxEntry,
    StaffTask,
)
from tests.conftest import start_server

SHANGHAI = ZoneInfo("Asia/Shanghai")
D0, D1, D2 = date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 2)
NOW = datetime(2026, 11, 3, 2, 0, tzinfo=timezone.utc)
LONG_AGO = datetime(2026, 10, 1, tzinfo=timezone.utc)


def local(day: date, hour: int, minute: int, second: int = 0) -> datetime:
    """A local Shanghai time (UTC+8): D1 23:59 is 15:59 UTC, D2 00:01 is 16:01 UTC on the
    same UTC day — bucketing by UTC would put both on 1 November."""
    return datetime.combine(day, time(hour, minute, second), SHANGHAI)


def expected(**values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {name: 0 for name in COUNTERS}
    row["median_first_reply_seconds"] = None
    row.update(values)
    return row


EXPECTED = {
    (D1, "super"): expected(
        members=2, joined=1, active=2, messages_in=3, staff_replies=1, median_first_reply_seconds=210.0,
        care_sent=1, tasks_due=2, tasks_done_on_time=1, orders=1, revenue_cents=12800,
    ),
    (D1, "regular"): expected(members=1, left=1, tasks_due=1),
    (D1, NO_LAYER): expected(members=1, messages_out=1, bot_replies=1),
    (D2, "super"): expected(
        members=2, active=1, messages_in=2, messages_out=2, bot_replies=2, median_first_reply_seconds=120.0,
        tasks_due=1, orders=1, revenue_cents=5000,
    ),
    (D2, "regular"): expected(
        members=1, joined=1, active=1, messages_in=1, staff_replies=1, median_first_reply_seconds=600.0,
    ),
    (D2, NO_LAYER): expected(members=1, tasks_due=1, tasks_done_on_time=1, orders=1, revenue_cents=10000),
}


async def seed(sessions: SessionFactory) -> dict[str, int]:
    """Members A and B (layer super), C and D (regular), E (no layer), F (super, gone)."""
    async with sessions() as session, session.begin():
        people = {
            "A": Member(name="A", created_at=LONG_AGO),
            "B": Member(name="B", created_at=local(D1, 10, 0)),  # joined on D1
            "C": Member(name="C", created_at=local(D2, 0, 30)),  # joined on D2 (16:30 UTC on 1 Nov)
            "D": Member(name="D", created_at=LONG_AGO, left_at=local(D1, 23, 30)),  # left on D1
            "E": Member(name="E", created_at=LONG_AGO),
            "F": Member(name="F", created_at=LONG_AGO, left_at=datetime(2026, 10, 15, tzinfo=timezone.utc)),
        }
        session.add_all(people.values())
        await session.flush()
        ids = {name: m.id for name, m in people.items()}
        assert all(ids.values())
        for name, layer in (("A", "super"), ("B", "super"), ("F", "super"), ("C", "regular"), ("D", "regular")):
            session.add(LayerAssignment(member_id=ids[name], scheme="value", layer=layer, assigned_at=LONG_AGO))
        session.add(LayerAssignment(member_id=ids["A"], scheme="lifecycle", layer="active", assigned_at=LONG_AGO))

        def said(who: str, kind: str, at: datetime) -> None:
            session.add(Interaction(member_id=ids[who], kind=kind, platform="wecom", at=at, text=kind))

        said("A", "message_in", local(D0, 23, 59, 59))  # the day before: nowhere
        said("A", "message_in", local(D1, 23, 50))
        said("A", "staff_out", local(D1, 23, 52))  # 120 s
        said("A", "message_in", local(D1, 23, 58))
        said("A", "message_out", local(D2, 0, 3))  # 300 s, answered the next day: still D1's
        said("A", "message_in", local(D2, 0, 0, 0))  # midnight belongs to D2: 180 s
        said("A", "message_in", local(D2, 0, 5))
        said("A", "message_out", local(D2, 0, 6))  # 60 s
        said("B", "message_in", local(D1, 12, 0))  # never answered: no gap
        said("B", "event", local(D1, 12, 1))
        said("C", "message_in", local(D2, 1, 0))
        said("C", "staff_out", local(D2, 1, 10))  # 600 s
        said("E", "message_out", local(D1, 15, 0))  # a push to E: not her being active

        def sent(key: str, who: str | None, kind: str, at: datetime | None, status: str = "sent") -> None:
            session.add(OutboxEntry(
                dedupe_key=key, platform="wecom", recipient=who or "staff", member_id=ids[who] if who else None,
                kind=kind, body=key, status=status, sent_at=at,
            ))

        sent("reply-1", "A", "service", local(D2, 0, 3))
        sent("reply-2", "A", "service", local(D2, 0, 6))
        sent("care-1", "A", "care", local(D1, 23, 59))
        sent("care-2", "B", "care", None, status="pending")
        sent("push-1", "B", "marketing", local(D1, 9, 0))
        sent("prompt-1", None, "staff_prompt", local(D1, 9, 0))
        sent("reply-3", "E", "service", local(D1, 15, 0))

        def task(key: str, who: str | None, due: date, status: str = "open", done: datetime | None = None) -> None:
            session.add(StaffTask(
                dedupe_key=key, member_id=ids[who] if who else None, kind="care", title=key,
                due_date=due, status=status, done_at=done,
            ))

        task("t1", "A", D1, "done", local(D1, 23, 0))  # on time
        task("t2", "B", D1, "done", local(D2, 0, 30))  # done, but the next day
        task("t3", "C", D1)
        task("t4", "A", D2, "skipped", local(D2, 9, 0))
        task("t5", None, D2, "done", local(D2, 8, 0))

        session.add_all([
            Order(order_no="o1", member_id=ids["A"], amount_cents=12800, ordered_at=local(D1, 23, 55)),
            Order(order_no="o2", member_id=ids["A"], amount_cents=5000, ordered_at=local(D2, 0, 1)),
            Order(order_no="o3", member_id=ids["E"], amount_cents=10000, ordered_at=local(D2, 0, 10)),
        ])
    return ids


def as_dict(row: EngagementDay) -> dict[str, Any]:
    return {name: getattr(row, name) for name in COUNTERS}


async def stored(sessions: SessionFactory, scheme: str = "value") -> dict[tuple[date, str], dict[str, Any]]:
    async with sessions() as session:
        rows = await engagement_series(session, scheme, D0, D2)
    return {(r.day, r.layer): as_dict(r) for r in rows}


def test_day_bounds_are_local_midnights() -> None:
    assert day_bounds(D2, SHANGHAI) == (
        datetime(2026, 11, 1, 16, tzinfo=timezone.utc), datetime(2026, 11, 2, 16, tzinfo=timezone.utc)
    )
    assert recent_days(datetime(2026, 11, 1, 16, 30, tzinfo=timezone.utc), SHANGHAI) == (D1, D2)


async def test_snapshot_counts_every_measure_per_layer_and_local_day(sessions: SessionFactory) -> None:
    await seed(sessions)
    written = await snapshot_engagement(sessions, ["value"], [D1, D2], SHANGHAI, NOW)
    assert written == 6
    found = await stored(sessions)
    assert found == EXPECTED
    async with sessions() as session:
        rows = await engagement_series(session, "value", D2, D2)
    assert [r.layer for r in rows] == [NO_LAYER, "regular", "super"]
    assert all(r.computed_at == NOW for r in rows)


async def test_rerunning_a_day_replaces_its_rows(sessions: SessionFactory) -> None:
    ids = await seed(sessions)
    await snapshot_engagement(sessions, ["value"], [D1, D2], SHANGHAI, NOW)
    later = NOW + timedelta(hours=1)
    assert await snapshot_engagement(sessions, ["value"], [D1, D2], SHANGHAI, later) == 6
    assert await stored(sessions) == EXPECTED

    # An order late on D1 and B moving down: the rerun of D1 shows both, nothing doubled.
    async with sessions() as session, session.begin():
        session.add(Order(order_no="o4", member_id=ids["A"], amount_cents=100, ordered_at=local(D1, 23, 59, 59)))
        moved = (await session.execute(select(LayerAssignment).where(
            LayerAssignment.member_id == ids["B"], LayerAssignment.scheme == "value"))).scalars().one()
        moved.layer = "regular"
    async with sessions() as session, session.begin():
        assert await snapshot_day(session, "value", D1, SHANGHAI, later) == 3
    found = await stored(sessions)
    assert found[(D1, "super")]["orders"] == 2 and found[(D1, "super")]["revenue_cents"] == 12900
    assert found[(D1, "super")]["members"] == 1 and found[(D1, "regular")]["members"] == 2
    assert found[(D1, "regular")]["joined"] == 1 and found[(D1, "regular")]["messages_in"] == 1
    assert found[(D2, "super")] == EXPECTED[(D2, "super")]  # other days untouched
    async with sessions() as session:
        count = (await session.execute(select(func.count()).select_from(EngagementDay))).scalar_one()
    assert count == 6


async def test_schemes_are_counted_apart_and_the_pyramid_is_current(sessions: SessionFactory) -> None:
    await seed(sessions)
    await snapshot_engagement(sessions, ["value", "lifecycle"], [D1], SHANGHAI, NOW)
    lifecycle = await stored(sessions, "lifecycle")
    assert set(lifecycle) == {(D1, "active"), (D1, NO_LAYER)}
    assert lifecycle[(D1, "active")]["messages_in"] == 2 and lifecycle[(D1, NO_LAYER)]["members"] == 3
    async with sessions() as session:
        # F and D have left: the pyramid counts who is still here.
        assert await layer_counts(session, "value") == {"super": 2, "regular": 1, NO_LAYER: 1}
        assert await layer_counts(session, "lifecycle") == {"active": 1, NO_LAYER: 3}


async def test_a_day_with_nothing_writes_nothing(sessions: SessionFactory) -> None:
    assert await snapshot_engagement(sessions, ["value"], [D1], SHANGHAI, NOW) == 0


async def test_the_daily_job_snapshots_yesterday_and_today(sessions: SessionFactory) -> None:
    await seed(sessions)
    # 00:30 on 3 November in Shanghai: yesterday is D2, today D3 (nothing yet but members).
    assert await snapshot_recent(sessions, ["value"], SHANGHAI, datetime(2026, 11, 2, 16, 30, tzinfo=timezone.utc)) == 6
    async with sessions() as session:
        rows = await engagement_series(session, "value", D1, D2 + timedelta(days=1))
    assert {(r.day, r.layer) for r in rows} == {(d, layer) for d in (D2, D2 + timedelta(days=1))
                                                for layer in ("super", "regular", NO_LAYER)}
    assert {as_dict(r)["messages_in"] for r in rows if r.day == D2 + timedelta(days=1)} == {0}


# -- siyu layers show -------------------------------------------------------------------

TODAY = date(2026, 11, 14)


async def seed_weeks(sessions: SessionFactory) -> None:
    """Three super members, one regular, one without a layer; two weeks of super days."""
    async with sessions() as session, session.begin():
        members = [Member(name=f"m{n}", created_at=LONG_AGO) for n in range(5)]
        session.add_all(members)
        await session.flush()
        for member, layer in zip(members, ("super", "super", "super", "regular")):
            assert member.id is not None
            session.add(LayerAssignment(member_id=member.id, scheme="value", layer=layer))
        for n in range(14):
            day = TODAY - timedelta(days=13 - n)
            this_week = n >= 7
            session.add(EngagementDay(
                day=day, scheme="value", layer="super", members=10,
                active=5 if this_week else 2,
                messages_in=6 if this_week else 3, messages_out=4 if this_week else 2,
                bot_replies=2 if this_week else 1, staff_replies=2 if this_week else 1,
                # Previous week: 60, 120 … 360 s and one day unanswered; this week 30 s.
                median_first_reply_seconds=30.0 if this_week else (60.0 * (n + 1) if n < 6 else None),
                care_sent=1 if this_week else 0, tasks_due=1, tasks_done_on_time=1 if this_week else 0,
                orders=1 if this_week else 0, revenue_cents=10000 if this_week else 0,
            ))
        # Outside both weeks: never read.
        session.add(EngagementDay(day=TODAY - timedelta(days=14), scheme="value", layer="super", orders=99))
        session.add(EngagementDay(day=TODAY, scheme="other", layer="super", orders=99))


async def test_layers_show_json_gives_pyramid_and_week_over_week(
    settings: Settings, sessions: SessionFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed_weeks(sessions)
    assert await layers_show(settings, "value", ["super", "regular", "new"], True, today=TODAY) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["this_week"] == {"first": "2026-11-08", "last": "2026-11-14", "snapshot_days": 7}
    assert report["previous_week"] == {"first": "2026-11-01", "last": "2026-11-07", "snapshot_days": 7}
    assert report["pyramid"] == [
        {"layer": "super", "members": 3, "share": 60.0},
        {"layer": "regular", "members": 1, "share": 20.0},
        {"layer": "new", "members": 0, "share": 0.0},
        {"layer": NO_LAYER, "members": 1, "share": 20.0},
    ]
    layers = {entry["layer"]: entry for entry in report["layers"]}
    assert list(layers) == ["super", "regular", "new", NO_LAYER]
    top = layers["super"]
    assert top["this_week"] == {
        "active_per_day": 5.0, "active_rate": 50.0, "messages_in": 42, "messages_out": 28, "bot_replies": 14,
        "staff_replies": 14, "median_first_reply_seconds": 30.0, "care_sent": 7, "tasks_done_on_time": 7,
        "tasks_due": 7, "orders": 7, "revenue_yuan": 700.0,
    }
    assert top["previous_week"] == {
        "active_per_day": 2.0, "active_rate": 20.0, "messages_in": 21, "messages_out": 14, "bot_replies": 7,
        "staff_replies": 7, "median_first_reply_seconds": 210.0, "care_sent": 0, "tasks_done_on_time": 0,
        "tasks_due": 7, "orders": 0, "revenue_yuan": 0.0,
    }
    assert top["change"]["messages_in"] == 21 and top["change"]["median_first_reply_seconds"] == -180.0
    assert top["change"]["revenue_yuan"] == 700.0 and top["change"]["active_rate"] == 30.0
    assert layers["regular"]["this_week"]["messages_in"] == 0
    assert layers["regular"]["this_week"]["median_first_reply_seconds"] is None
    assert any("median of the daily medians" in note for note in report["notes"])


async def test_layers_show_averages_over_the_days_the_snapshot_ran(
    settings: Settings, sessions: SessionFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    async with sessions() as session, session.begin():
        session.add(EngagementDay(day=TODAY, scheme="value", layer="super", members=10, active=6))
        session.add(EngagementDay(day=TODAY - timedelta(days=3), scheme="value", layer="super", members=10, active=4))
        session.add(EngagementDay(day=TODAY, scheme="value", layer="regular", members=5))
    assert await layers_show(settings, "value", ["super", "regular"], True, today=TODAY) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["this_week"]["snapshot_days"] == 2 and report["previous_week"]["snapshot_days"] == 0
    top = report["layers"][0]
    assert top["layer"] == "super" and top["this_week"]["active_per_day"] == 5.0
    assert top["previous_week"]["active_per_day"] is None and top["change"]["active_per_day"] is None
    assert report["layers"][1]["this_week"]["active_per_day"] == 0.0  # the day ran: nobody was active
    assert report["pyramid"] == [{"layer": "super", "members": 0, "share": 0.0},
                                 {"layer": "regular", "members": 0, "share": 0.0}]


async def test_layers_show_prints_tables(
    settings: Settings, sessions: SessionFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed_weeks(sessions)
    assert await layers_show(settings, "value", ["super", "regular"], False, today=TODAY) == 0
    out = capsys.readouterr().out
    assert "60.0%" in out and "20.0%" in out and NO_LAYER in out
    assert out.index("super") < out.index("regular") < out.index(NO_LAYER)
    assert "median first reply" in out and "3m 30s" in out and "30s" in out
    assert "700.00" in out and "median of the daily medians" in out


async def test_layers_show_says_when_no_snapshot_ran(
    settings: Settings, sessions: SessionFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await layers_show(settings, "value", ["super"], False, today=TODAY) == 0
    assert "has not run" in capsys.readouterr().out


# -- GET /api/engagement ------------------------------------------------------------------

API_TOKEN = "s3cret-token-for-the-api-0123"


async def test_the_engagement_api_needs_the_token_and_gives_the_series(
    settings: Settings, sessions: SessionFactory, http: aiohttp.ClientSession
) -> None:
    today = datetime.now(SHANGHAI).date()
    async with sessions() as session, session.begin():
        member = Member(name="m", created_at=LONG_AGO)
        session.add(member)
        await session.flush()
        assert member.id is not None
        session.add(LayerAssignment(member_id=member.id, scheme="value", layer="super"))
        session.add(EngagementDay(day=today, scheme="value", layer="super", members=1, active=1,
                                  messages_in=3, median_first_reply_seconds=42.5, revenue_cents=9900))
        session.add(EngagementDay(day=today - timedelta(days=1), scheme="value", layer="super", members=1))
        session.add(EngagementDay(day=today - timedelta(days=30), scheme="value", layer="super", orders=7))
    unconfigured = await start_server(build_app(settings), http)
    try:
        async with http.get(f"{unconfigured.base}/api/engagement", params={"scheme": "value"}) as response:
            assert response.status == 404  # no token configured: no API
    finally:
        await unconfigured.stop()
    with_token = settings.model_copy(update={"server": settings.server.model_copy(update={"api_token": SecretStr(API_TOKEN)})})
    server = await start_server(build_app(with_token), http)
    try:
        url = f"{server.base}/api/engagement"
        bearer = {"Authorization": f"Bearer {API_TOKEN}"}

        async def get(params: dict[str, str], headers: dict[str, str]) -> tuple[int, Any]:
            async with http.get(url, params=params, headers=headers) as response:
                return response.status, await response.json()

        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {API_TOKEN}x"},
                        {"Authorization": f"Basic {API_TOKEN}"}, {"Authorization": API_TOKEN}):
            status, body = await get({"scheme": "value"}, headers)
            assert status == 401 and "error" in body, headers
        for params in ({}, {"scheme": ""}, {"scheme": "value", "days": "0"}, {"scheme": "value", "days": "367"},
                       {"scheme": "value", "days": "many"}):
            status, body = await get(params, bearer)
            assert status == 400 and "error" in body, params

        status, body = await get({"scheme": "value"}, bearer)
        assert status == 200
        assert body["scheme"] == "value" and body["pyramid"] == {"super": 1}
        assert len(body["days"]) == 30
        assert body["days"][-1]["day"] == today.isoformat()
        assert body["days"][0]["day"] == (today - timedelta(days=29)).isoformat()
        assert body["days"][-1]["layers"]["super"] == {
            "members": 1, "joined": 0, "left": 0, "active": 1, "messages_in": 3, "messages_out": 0,
            "bot_replies": 0, "staff_replies": 0, "median_first_reply_seconds": 42.5, "care_sent": 0,
            "tasks_due": 0, "tasks_done_on_time": 0, "orders": 0, "revenue_cents": 9900,
        }
        assert body["days"][-2]["layers"]["super"]["members"] == 1
        assert all(not d["layers"] for d in body["days"][:-2])  # listed, with nothing in them

        status, body = await get({"scheme": "value", "days": "31"}, bearer)
        assert status == 200 and body["days"][0]["layers"]["super"]["orders"] == 7
        status, body = await get({"scheme": "value", "days": "1"}, bearer)
        assert [d["day"] for d in body["days"]] == [today.isoformat()]
    finally:
        await server.stop()
