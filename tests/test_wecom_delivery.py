"""Delivery to WeCom over time, with a controllable clock: storms, backoff, windows."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select
from tenacity import wait_none

from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.sender import WeComSender
from bot.settings.model import load_settings
from bot.web.app import build_app
from scheduler.delivery import DeliveryLoop
from storage.engine import SessionFactory
from storage.inbox import InboxWriter
from storage.interactions import record_interaction
from storage.members import resolve_member
from storage.models import OutboxEntry
from storage.outbox import NewOutboxMessage, enqueue
from tests.conftest import start_server, write_config
from tests.fakes.wecom_cloud import FakeWeComCloud
from tests.wecom_harness import AGENT, CORP, KF_SEND, SECRET, Corp, contact_event, wecom_config

KFID = "wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q"
ALICE = "wmAJ2GCAAAXtWyujaWJHDDGi0mAAAA"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def cloud() -> AsyncIterator[FakeWeComCloud]:
    fake = FakeWeComCloud(CORP, {SECRET: "siyu"})
    await fake.start()
    yield fake
    await fake.close()


async def test_a_long_45009_storm_defers_the_reply_and_it_is_sent_once(
    cloud: FakeWeComCloud, sessions: SessionFactory
) -> None:
    clock = Clock()
    cloud.customer_writes(KFID, ALICE, "在吗")
    async with sessions() as session, session.begin():
        member = await resolve_member(session, "wecom", ALICE, None, clock())
        await record_interaction(session, member.id, "message_in", "wecom", clock(), "在吗", ref="inbox:1")  # type: ignore[arg-type]
        await enqueue(session, [NewOutboxMessage(
            "reply:1:0", "wecom", ALICE, "service", "在的～", member_id=member.id, meta=f'{{"conversation": "kf:{KFID}"}}',
        )], clock())
    cloud.fail_next(KF_SEND, 45009, times=10)  # longer than one send's four tries
    writer = InboxWriter(sessions.kw["bind"])
    async with aiohttp.ClientSession() as http:
        client = WeComClient(http, cloud.base_url, CORP, SECRET, retry_wait=wait_none(), attempts=4)
        loop = DeliveryLoop(sessions, {"wecom": WeComSender(client, sessions, AGENT, lambda: writer, clock)}, clock=clock)
        statuses = []
        for _ in range(3):
            await loop.run_once()
            async with sessions() as session:
                row = (await session.execute(select(OutboxEntry))).scalars().one()
            statuses.append((row.status, row.attempts))
            assert row.status == "sent" or row.not_before >= clock.now + timedelta(seconds=59)  # 45009: wait out the minute
            clock.now += timedelta(seconds=61)
    assert statuses == [("pending", 1), ("pending", 2), ("sent", 3)]
    assert len(cloud.calls_to(KF_SEND)) == 11 and len(cloud.deliveries(KF_SEND)) == 1


async def test_a_reply_outside_the_48_hour_window_fails_with_the_reason(
    cloud: FakeWeComCloud, sessions: SessionFactory
) -> None:
    clock = Clock()
    async with sessions() as session, session.begin():
        member = await resolve_member(session, "wecom", ALICE, None, clock())
        await record_interaction(session, member.id, "message_in", "wecom", clock() - timedelta(hours=49), "在吗", ref="inbox:1")  # type: ignore[arg-type]
        await enqueue(session, [NewOutboxMessage(
            "reply:1:0", "wecom", ALICE, "service", "在的～", member_id=member.id, meta=f'{{"conversation": "kf:{KFID}"}}',
        )], clock())
    async with aiohttp.ClientSession() as http:
        client = WeComClient(http, cloud.base_url, CORP, SECRET, retry_wait=wait_none())
        loop = DeliveryLoop(sessions, {"wecom": WeComSender(client, sessions, AGENT, lambda: InboxWriter(sessions.kw["bind"]), clock)}, clock=clock)
        await loop.run_once()
    async with sessions() as session:
        row = (await session.execute(select(OutboxEntry))).scalars().one()
    assert (row.status, row.last_error) == ("failed", "outside the 48-hour reply window since the member last wrote")
    assert cloud.calls_to(KF_SEND) == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_optional_replay_window_refuses_stale_callbacks(
    cloud: FakeWeComCloud, db_url: str, tmp_path: Path, sessions: SessionFactory
) -> None:
    config = wecom_config(cloud.base_url).replace("retry_max_seconds = 0.01\n", "retry_max_seconds = 0.01\nreplay_window_seconds = 300\n", 1)
    settings = load_settings(write_config(tmp_path, db_url, config))
    async with aiohttp.ClientSession() as http:
        running = await start_server(build_app(settings), http)
        try:
            corp = Corp(cloud, running, sessions)
            for _ in range(400):  # a long session's worth of callbacks before this one
                corp.stamp()
            query, body = corp.envelope(contact_event("add_external_contact", ALICE))
            assert abs(int(query["timestamp"]) - time.time()) <= 2  # the harness stamps now, not a counter
            assert (await corp.post(query, body))[0] == 200
            # Correctly signed, but an hour old.
            query, body = corp.envelope(contact_event("del_follow_user", ALICE), timestamp=str(int(time.time()) - 3600))
            status, _ = await corp.post(query, body)
        finally:
            await running.stop()
    assert status == 403
    assert await corp.inbox_rows() == 1
