"""Delivery that holds: lanes per route, welcomes inside their 20 s, claims that lapse,
sends the platform cannot deduplicate, limits and tokens shared by processes — against
the fake WeCom cloud and a real database (SQLite, and PostgreSQL where it is set)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest
from sqlalchemy import func, select
from tenacity import wait_none

from bot.platforms.oa.sender import OfficialAccountSender
from bot.platforms.wecom.client import OfficialAccountClient, WeComClient
from bot.platforms.wecom.errors import WeComApiError, WeComRateLimited
from bot.platforms.wecom.ratelimit import APP_MESSAGE_LIMITS
from bot.platforms.wecom.sender import WeComSender
from scheduler.delivery import DeliveryLoop, OutboundMessage
from storage.engine import SessionFactory, create_database_engine, session_factory
from storage.inbox import InboxWriter
from storage.models import Member, OutboxEntry, SendSlot, Staff, StaffTask, utcnow
from storage.outbox import NewOutboxMessage, enqueue
from storage.send_limits import DatabaseSendLimits
from storage.shared_values import DatabaseValues
from tests.conftest import eventually
from tests.fakes.wecom_cloud import FakeWeComCloud
from tests.wecom_harness import AGENT, CORP, SECRET

WELCOME_PATH = "/cgi-bin/externalcontact/send_welcome_msg"
STAFF_PATH = "/cgi-bin/message/send"
MASS_PATH = "/cgi-bin/externalcontact/add_msg_template"
OA_PATH = "/cgi-bin/message/custom/send"
OWNER = "zhangsan"
APPID, OA_SECRET = "wx5823bf96d3bd56c7", "oa-secret-for-tests-0123456789"


@pytest.fixture
async def cloud() -> AsyncIterator[FakeWeComCloud]:
    fake = FakeWeComCloud(CORP, {SECRET: "siyu"})
    fake.add_official_account(APPID, OA_SECRET)
    fake.add_staff(OWNER, "lisi")
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def wecom(http: aiohttp.ClientSession, cloud: FakeWeComCloud, timeout: float = 10.0, **kwargs: object) -> WeComClient:
    return WeComClient(http, cloud.base_url, CORP, SECRET, retry_wait=wait_none(),
                       timeout=aiohttp.ClientTimeout(total=timeout), **kwargs)  # type: ignore[arg-type]


def loop_for(sessions: SessionFactory, client: WeComClient, **kwargs: object) -> DeliveryLoop:
    sender = WeComSender(client, sessions, AGENT, lambda: InboxWriter(sessions.kw["bind"]))
    return DeliveryLoop(sessions, {"wecom": sender}, **kwargs)  # type: ignore[arg-type]


async def new_contacts(sessions: SessionFactory, cloud: FakeWeComCloud, count: int,
                       received_at: datetime | None = None) -> list[str]:
    """`count` members owned by OWNER, each with a welcome row carrying a fresh code."""
    now = utcnow()
    keys = []
    async with sessions() as session, session.begin():
        owner = (await session.execute(select(Staff).where(Staff.userid == OWNER))).scalar_one_or_none()
        if owner is None:
            owner = Staff(userid=OWNER, name="张三")
            session.add(owner)
            await session.flush()
        rows = []
        for n in range(count):
            external = f"wmNewContact{len(cloud.customers) + n:06d}AAAAAAAAAAAAA"
            cloud.add_contact(OWNER, external, f"顾客{n}")
            member = Member(name=f"顾客{n}", owner_staff_id=owner.id)
            session.add(member)
            await session.flush()
            code = cloud.issue_welcome_code(external, OWNER)
            meta = {"welcome_code": code, "received_at": (received_at or now).isoformat()}
            keys.append(f"welcome:test:{external}")
            rows.append(NewOutboxMessage(keys[-1], "wecom", external, "service", "欢迎光临小禾烘焙",
                                         member_id=member.id, route="welcome", meta=json.dumps(meta)))
        await enqueue(session, rows, now)
    return keys


async def rows(sessions: SessionFactory, route: str | None = None) -> list[OutboxEntry]:
    async with sessions() as session:
        statement = select(OutboxEntry).order_by(OutboxEntry.id)  # type: ignore[arg-type]
        if route is not None:
            statement = statement.where(OutboxEntry.route == route)
        return list((await session.execute(statement)).scalars())


async def test_a_slow_route_holds_back_no_welcome(sessions: SessionFactory, cloud: FakeWeComCloud,
                                                   http: aiohttp.ClientSession) -> None:
    # A staff prompt whose every try answers after 12 s, queued before 20 new contacts.
    cloud.slow_next(STAFF_PATH, 12.0, times=4)
    async with sessions() as session, session.begin():
        await enqueue(session, [NewOutboxMessage("prompt:slow", "wecom", OWNER, "staff_prompt", "请跟进")], utcnow())
    await new_contacts(sessions, cloud, 20)
    loop = loop_for(sessions, wecom(http, cloud, timeout=12.5))
    loop.start()
    try:
        async def welcomed() -> bool:
            return all(r.status == "sent" for r in await rows(sessions, "welcome"))
        await eventually(welcomed, timeout=30)
        assert len(cloud.deliveries(WELCOME_PATH)) == 20
        prompt = (await rows(sessions, "message"))[0]
        assert prompt.status == "sending"  # still waiting on its slow answer, alone in its lane
    finally:
        await loop.close(timedelta(seconds=0.1))


async def test_a_backlog_of_one_slow_route_takes_no_claim_another_route_needs(
    sessions: SessionFactory, cloud: FakeWeComCloud, http: aiohttp.ClientSession,
) -> None:
    cloud.slow_next(STAFF_PATH, 12.0, times=30)
    cloud.add_contact(OWNER, "wmProfileReader0000000AAAAAAAAA", "王芳")
    async with sessions() as session, session.begin():
        await enqueue(session, [NewOutboxMessage(f"prompt:slow:{n}", "wecom", OWNER, "staff_prompt", f"请跟进 {n}")
                                for n in range(30)], utcnow() - timedelta(seconds=5))
        await enqueue(session, [NewOutboxMessage("profile:1", "wecom", "wmProfileReader0000000AAAAAAAAA", "request", "",
                                                 route="profile")], utcnow())
    loop = loop_for(sessions, wecom(http, cloud, timeout=12.5), batch_size=10, concurrency=4)
    loop.start()
    try:
        async def profile_read() -> bool:
            return (await rows(sessions, "profile"))[0].status == "sent"
        await eventually(profile_read, timeout=10)
        prompts = await rows(sessions, "message")
        assert sum(p.status == "sending" for p in prompts) == 4  # its lane, and not one row more
    finally:
        await loop.close(timedelta(seconds=0.1))


async def test_a_45009_on_a_welcome_is_retried_within_seconds(sessions: SessionFactory, cloud: FakeWeComCloud,
                                                               http: aiohttp.ClientSession) -> None:
    cloud.fail_next(WELCOME_PATH, 45009, times=2)
    await new_contacts(sessions, cloud, 1)
    loop = loop_for(sessions, wecom(http, cloud))
    loop.start()
    try:
        async def sent() -> bool:
            return (await rows(sessions, "welcome"))[0].status == "sent"
        await eventually(sent, timeout=15)
    finally:
        await loop.close()
    (welcome,) = await rows(sessions, "welcome")
    assert welcome.attempts == 3 and len(cloud.deliveries(WELCOME_PATH)) == 1


async def test_a_welcome_too_late_expires_with_the_reason_and_its_owner_is_asked_once(
    sessions: SessionFactory, cloud: FakeWeComCloud, http: aiohttp.ClientSession,
) -> None:
    await new_contacts(sessions, cloud, 1, received_at=utcnow() - timedelta(seconds=25))
    cloud.fail_next(WELCOME_PATH, 41050)  # and one WeCom refuses as expired
    await new_contacts(sessions, cloud, 1)
    loop = loop_for(sessions, wecom(http, cloud))
    await loop.run_once()
    await loop.run_once()  # the owner's prompts
    late, refused = await rows(sessions, "welcome")
    assert late.status == "expired" and "expired before it could be sent" in (late.last_error or "")
    assert refused.status == "expired" and "41050" in (refused.last_error or "")
    assert len(cloud.calls_to(WELCOME_PATH)) == 1  # the late one was not even tried
    async with sessions() as session:
        tasks = list((await session.execute(select(StaffTask))).scalars())
    assert sorted(t.kind for t in tasks) == ["welcome_by_hand", "welcome_by_hand"]
    (prompt,) = cloud.deliveries(STAFF_PATH)  # one for both: a burst must not flood her
    assert prompt.to == OWNER and "手动问候" in prompt.body["text"]["content"]
    await loop.run_once()
    assert len(cloud.deliveries(STAFF_PATH)) == 1


async def test_a_mass_send_whose_answer_was_lost_is_looked_up_and_never_created_twice(
    sessions: SessionFactory, cloud: FakeWeComCloud, http: aiohttp.ClientSession,
) -> None:
    for n in range(2):
        cloud.add_contact(OWNER, f"wmMassTarget{n:06d}AAAAAAAAAAAAAAA", f"顾客{n}")
        cloud.add_contact("lisi", f"wmMassOther{n:06d}AAAAAAAAAAAAAAAA", f"客人{n}")
    text = "周末新品：桂花酒酿面包"
    async with sessions() as session, session.begin():
        await enqueue(session, [
            NewOutboxMessage(f"cal:new:{who}", "wecom", who, "request", text, route="mass_send", meta=json.dumps(
                {"chat_type": "single", "external_userid": [c.external_userid for c in cloud.follows if c.userid == who]}))
            for who in ("lisi", OWNER)
        ], utcnow())
    # WeCom creates both tasks but answers one after the client gave up.
    cloud.late_next(MASS_PATH, 2.0, times=1)
    client = wecom(http, cloud, timeout=0.5)
    loop = loop_for(sessions, client)
    await loop.run_once()
    first = {r.recipient: r for r in await rows(sessions, "mass_send")}
    assert sum(r.status == "pending" for r in first.values()) == 1
    assert len(cloud.mass_templates) == 2
    # Due again: looked up (same text, the task waits on her), found, recorded, not created.
    async with sessions() as session, session.begin():
        for row in (await session.execute(select(OutboxEntry))).scalars():
            row.not_before = utcnow() - timedelta(seconds=1)
    await loop.run_once()
    after = await rows(sessions, "mass_send")
    assert [r.status for r in after] == ["sent", "sent"]
    assert len(cloud.mass_templates) == 2 and len(cloud.calls_to(MASS_PATH)) == 2
    assert {r.platform_msg_id for r in after} == {t.msgid for t in cloud.mass_templates}


async def test_official_account_marketing_of_unknown_outcome_is_not_resent_but_a_service_reply_is(
    sessions: SessionFactory, cloud: FakeWeComCloud, http: aiohttp.ClientSession,
) -> None:
    oa = OfficialAccountClient(http, cloud.base_url, APPID, OA_SECRET, retry_wait=wait_none(),
                               timeout=aiohttp.ClientTimeout(total=0.5))
    sender = OfficialAccountSender(oa, sessions)
    for openid in ("oFollowerMarketing", "oFollowerService"):
        cloud.user_writes(openid)
    results = {}
    for kind, openid in (("marketing", "oFollowerMarketing"), ("service", "oFollowerService")):
        cloud.late_next(OA_PATH, 2.0)
        message = OutboundMessage(1, f"k:{kind}", "oa", openid, kind, "本周新品", None)
        results[kind] = await sender.send(message)
    assert results["marketing"].status == "failed" and "at most once" in results["marketing"].detail
    assert results["service"].status == "retry" and "outcome unknown" in results["service"].detail
    again = OutboundMessage(2, "k:service", "oa", "oFollowerService", "service", "本周新品", None,
                            attempts=2, last_error=results["service"].detail)
    assert (await sender.send(again)).status == "sent"
    blocked = OutboundMessage(3, "k:marketing", "oa", "oFollowerMarketing", "marketing", "本周新品", None,
                              attempts=2, last_error="host:1:ab stopped mid-send: outcome unknown")
    assert (await sender.send(blocked)).status == "failed"
    assert [d.to for d in cloud.deliveries(OA_PATH)] == ["oFollowerMarketing", "oFollowerService", "oFollowerService"]


async def test_two_processes_share_one_token_and_one_send_count(
    db_url: str, cloud: FakeWeComCloud, http: aiohttp.ClientSession,
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("several processes share one database on PostgreSQL only (SQLite serves one process)")
    # Two engines on one database: two processes' pools.
    engines = [create_database_engine(db_url) for _ in range(2)]
    try:
        factories = [session_factory(e) for e in engines]
        oa = [OfficialAccountClient(http, cloud.base_url, APPID, OA_SECRET, values=DatabaseValues(f)) for f in factories]
        tokens = await asyncio.gather(*(client.access_token() for client in oa for _ in range(3)))
        assert len(set(tokens)) == 1 and cloud.tokens_issued == 1
        clients = [wecom(http, cloud, send_limits=DatabaseSendLimits(f, APP_MESSAGE_LIMITS), values=DatabaseValues(f))
                   for f in factories]
        outcomes = await asyncio.gather(
            *(clients[n % 2].send_text_to_staff(OWNER, AGENT, f"提醒 {n}") for n in range(45)), return_exceptions=True,
        )
        limited = [o for o in outcomes if isinstance(o, WeComRateLimited)]
        assert len(limited) == 15 and not [o for o in outcomes if isinstance(o, BaseException) and o not in limited]
        assert len(cloud.deliveries(STAFF_PATH)) == 30 and cloud.dropped == []
        assert cloud.tokens_issued == 2  # one WeCom token for both, besides the account's
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_killed_process_claims_are_taken_over_after_expiry_and_nothing_is_sent_twice(
    db_url: str, sessions: SessionFactory, cloud: FakeWeComCloud, http: aiohttp.ClientSession,
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("several processes share one database on PostgreSQL only (SQLite serves one process)")
    for n in range(3):
        cloud.add_contact(OWNER, f"wmKillTarget{n:06d}AAAAAAAAAAAAAAA", f"顾客{n}")
    async with sessions() as session, session.begin():
        await enqueue(session, [
            NewOutboxMessage(f"cal:kill:{n}", "wecom", OWNER, "request", f"第{n}期新品", route="mass_send", meta=json.dumps(
                {"chat_type": "single", "external_userid": [f"wmKillTarget{n:06d}AAAAAAAAAAAAAAA"]})) for n in range(3)
        ] + [NewOutboxMessage(f"prompt:kill:{n}", "wecom", OWNER, "staff_prompt", f"请跟进第{n}位") for n in range(3)],
            utcnow())
    # Every call is applied at once and answered far too late: the worker dies mid-send.
    cloud.late_next(MASS_PATH, 60.0, times=3)
    cloud.late_next(STAFF_PATH, 60.0, times=3)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.delivery_worker", db_url, cloud.base_url, "2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async def all_applied() -> bool:
            return len(cloud.calls_to(MASS_PATH)) == 3 and len(cloud.calls_to(STAFF_PATH)) == 3
        await eventually(all_applied, timeout=30)
        assert {r.claimed_by for r in await rows(sessions)} == {"worker-to-kill"}
        process.send_signal(signal.SIGKILL)
        await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    survivor = loop_for(sessions, wecom(http, cloud), lease=timedelta(seconds=2), owner="survivor")
    survivor.start()
    try:
        async def all_sent() -> bool:
            return all(r.status == "sent" for r in await rows(sessions))
        await eventually(all_sent, timeout=30)
    finally:
        await survivor.close()
    taken = await rows(sessions)
    assert all(r.attempts == 2 and r.claimed_by is None for r in taken)
    assert len(cloud.mass_templates) == 3  # looked up, not created again
    assert sorted(t.msgid for t in cloud.mass_templates) == sorted(r.platform_msg_id or "" for r in taken if r.route == "mass_send")
    assert sorted(d.body["text"]["content"] for d in cloud.deliveries(STAFF_PATH)) == [f"请跟进第{n}位" for n in range(3)]


async def test_bad_lookups_and_limits_are_refused(cloud: FakeWeComCloud, http: aiohttp.ClientSession,
                                                  sessions: SessionFactory) -> None:
    client = wecom(http, cloud)
    now = int(utcnow().timestamp())
    with pytest.raises(WeComApiError) as refused:
        await client.list_mass_sends(now - 40 * 86400, now)  # WeCom lists a month at most
    assert refused.value.errcode == 40058
    assert await client.list_mass_sends(now - 60, now) == []
    with pytest.raises(ValueError):
        DatabaseSendLimits(sessions, [(0, 60.0)])


async def test_send_limits_in_the_database_wait_for_the_slot_that_frees_first(sessions: SessionFactory) -> None:
    """Each limit (count, window) counts the sends inside its window: a send beyond one
    waits until the count-th newest leaves that window, the longest wait of all limits."""
    now = [datetime(2026, 12, 3, 10, 0, tzinfo=timezone.utc)]
    limits = DatabaseSendLimits(sessions, [(2, 60.0), (3, 3600.0)], clock=lambda: now[0])
    assert await limits.reserve(["zhangsan"]) == 0.0
    now[0] += timedelta(seconds=10)
    assert await limits.reserve(["zhangsan"]) == 0.0
    now[0] += timedelta(seconds=5)
    assert await limits.reserve(["zhangsan"]) == pytest.approx(45.0)  # the first leaves the minute at 10:01:00
    assert await limits.reserve(["lisi"]) == 0.0  # each key counts alone
    assert await limits.reserve([]) == 0.0  # nobody to send to: nothing to count
    now[0] += timedelta(seconds=50)  # 10:01:05: the minute holds one send, the hour two
    assert await limits.reserve(["zhangsan"]) == 0.0
    now[0] += timedelta(seconds=60)
    assert await limits.reserve(["zhangsan"]) == pytest.approx(3600.0 - 125.0)  # the hour's third slot: 10:00:00's
    # Both keys at once: none is counted when one must wait.
    assert await limits.reserve(["lisi", "zhangsan"]) == pytest.approx(3475.0)
    now[0] += timedelta(seconds=3476)
    assert await limits.reserve(["lisi", "zhangsan"]) == 0.0
    # A slot that has left every window is not kept: 10:00:00's went with this send.
    async with sessions() as session:
        kept = (await session.execute(select(SendSlot.key, func.count()).group_by(SendSlot.key))).all()
    assert sorted(kept) == [("lisi", 2), ("zhangsan", 3)]
