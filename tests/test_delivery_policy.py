"""The policy gate at send time: quiet hours defer (not drop), weekly caps per layer hold
marketing (not care), and every row that waits or stops says why."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.cli.inspect import outbox_list
from bot.settings.model import load_settings
from scheduler.delivery import DeliveryLoop, OutboundMessage, SendResult
from scheduler.gate import DeliveryPolicy
from scheduler.policy import QuietHours, cap_problem
from storage.engine import SessionFactory
from storage.models import LayerAssignment, Member, OutboxEntry
from storage.outbox import NewOutboxMessage, enqueue
from tests.conftest import write_config

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(hour: int, minute: int = 0, day: int = 23) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("at", "until"),
    [
        (local(21, 29), None),
        (local(21, 30), local(8, 30, day=24)),
        (local(2, 0), local(8, 30)),
        (local(8, 30), None),
    ],
)
def test_quiet_hours_run_past_midnight(at: datetime, until: datetime | None) -> None:
    assert QuietHours(time(21, 30), time(8, 30)).until(at) == until


def test_caps_count_only_marketing() -> None:
    assert cap_problem("marketing", 2, 2, "ordinary") == "weekly cap reached: 2 of 2 marketing messages for layer ordinary"
    assert cap_problem("marketing", 1, 2, "ordinary") is None
    assert cap_problem("care", 9, 2, "ordinary") is None
    assert cap_problem("marketing", 9, None, None) is None


class Phone:
    """The member's phone: what reached her, and when."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []

    async def send(self, message: OutboundMessage) -> SendResult:
        self.received.append((message.kind, message.body))
        return SendResult.sent()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def member_in(sessions: SessionFactory, layer: str) -> int:
    async with sessions() as session, session.begin():
        member = Member(name="王芳")
        session.add(member)
        await session.flush()
        assert member.id is not None
        session.add(LayerAssignment(member_id=member.id, scheme="value", layer=layer))
        return member.id


async def queue(sessions: SessionFactory, member_id: int, kind: str, body: str, now: datetime) -> None:
    async with sessions() as session, session.begin():
        await enqueue(session, [NewOutboxMessage(f"{kind}:{body}", "sandbox", "王芳", kind, body, member_id=member_id)], now)


async def rows(sessions: SessionFactory) -> dict[str, tuple[str, str | None]]:
    async with sessions() as session:
        found = (await session.execute(select(OutboxEntry.body, OutboxEntry.status, OutboxEntry.last_error))).all()
    return {body: (status, error) for body, status, error in found}


POLICY = DeliveryPolicy(SHANGHAI, QuietHours(), "value", {"super": 4}, 2)


async def test_marketing_written_at_night_waits_for_the_morning_and_service_does_not(sessions: SessionFactory) -> None:
    member = await member_in(sessions, "ordinary")
    clock, phone = Clock(local(23, 0)), Phone()
    loop = DeliveryLoop(sessions, {"sandbox": phone}, policy=POLICY, clock=clock)
    for kind, body in (("marketing", "新品预告"), ("care", "生日快乐"), ("service", "好的，收到")):
        await queue(sessions, member, kind, body, clock.now)
    await loop.run_once()
    assert phone.received == [("service", "好的，收到")]
    found = await rows(sessions)
    assert found["新品预告"] == ("deferred", "quiet hours until 11-24 08:30")
    assert found["生日快乐"][0] == "deferred"

    clock.now = local(8, 29, day=24)
    assert await loop.run_once() == 0  # still quiet: not even claimed
    clock.now = local(8, 30, day=24)
    await loop.run_once()
    assert sorted(phone.received) == sorted([("service", "好的，收到"), ("marketing", "新品预告"), ("care", "生日快乐")])


async def test_the_weekly_cap_follows_her_layer_and_exempts_care(sessions: SessionFactory) -> None:
    ordinary, top = await member_in(sessions, "ordinary"), await member_in(sessions, "super")
    clock, phone = Clock(local(12, 0)), Phone()
    loop = DeliveryLoop(sessions, {"sandbox": phone}, policy=POLICY, clock=clock)
    for n in range(5):
        for member in (ordinary, top):
            await queue(sessions, member, "marketing", f"第{n}篇-{member}", clock.now)
            await loop.run_once()
            clock.now += timedelta(minutes=1)
    await queue(sessions, ordinary, "care", "生日快乐", clock.now)
    await loop.run_once()
    found = await rows(sessions)
    sent = {body for body, (status, _) in found.items() if status == "sent"}
    assert {f"第{n}篇-{ordinary}" for n in range(2)} | {"生日快乐"} <= sent
    assert found[f"第2篇-{ordinary}"] == ("held", "weekly cap reached: 2 of 2 marketing messages for layer ordinary")
    assert {f"第{n}篇-{top}" for n in range(4)} <= sent and found[f"第4篇-{top}"][0] == "held"
    # A week on, the cap is free again.
    clock.now += timedelta(days=7)
    await queue(sessions, ordinary, "marketing", "下周的", clock.now)
    await loop.run_once()
    assert (await rows(sessions))["下周的"][0] == "sent"


async def test_deferred_rows_are_listed_with_their_reason(
    db_url: str, tmp_path: Path, sessions: SessionFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    member = await member_in(sessions, "ordinary")
    night = datetime.now(timezone.utc)
    await queue(sessions, member, "marketing", "新品预告", night)
    loop = DeliveryLoop(sessions, {"sandbox": Phone()}, policy=DeliveryPolicy(SHANGHAI, QuietHours(time(0, 0), time(23, 59))),
                        clock=lambda: night)
    await loop.run_once()
    settings = load_settings(write_config(tmp_path, db_url))
    assert await outbox_list(settings, "deferred", 50, True) == 0  # siyu outbox list --status deferred --json
    listed = json.loads(capsys.readouterr().out)
    entries = listed if isinstance(listed, list) else listed.get("entries", listed.get("rows", []))
    assert [e["status"] for e in entries] == ["deferred"] and "quiet hours until" in json.dumps(entries, ensure_ascii=False)
