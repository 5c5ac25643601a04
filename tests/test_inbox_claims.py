"""Inbox claims on both databases: urgent members first, a member's rows held by one
claimant at a time, an expired claim taken over and the old claimant's work refused;
counters counted in the database; the urgent flag set when a welcome code arrives."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import event, select, update

from bot.settings.model import ConfigError, load_settings
from storage.engine import SessionFactory
from storage.inbox import ClaimLost, InboxWriter, NewInboxEntry, claim_entries, mark_done, renew_claims
from storage.members import resolve_member
from storage.models import InboxEntry, utcnow
from storage.tables import INBOX
from storage.tags import add_interest, apply_tag, ensure_tag, interests_of, tags_of
from bot.web.app import build_app
from tests.conftest import start_server, write_config
from tests.fakes.wecom_cloud import FakeWeComCloud
from tests.wecom_harness import Corp, contact_event, wecom_config

LEASE = timedelta(seconds=30)


async def store(sessions: SessionFactory, entries: list[NewInboxEntry]) -> None:
    writer = InboxWriter(sessions.kw["bind"])
    writer.start()
    for entry in entries:  # one by one: ids follow the order written
        await writer.add(entry)
    await writer.close()


async def test_an_urgent_member_is_claimed_ahead_of_the_backlog(sessions: SessionFactory) -> None:
    backlog = [NewInboxEntry(f"old-{n}", "wecom", f"m{n % 300}", "{}") for n in range(900)]
    await store(sessions, [*backlog, NewInboxEntry("welcome", "wecom", "newcomer", "{}", urgent=True)])
    now = utcnow()
    async with sessions() as session, session.begin():
        first = await claim_entries(session, "a", now, LEASE, senders=1)
    assert [row.key for row in first] == ["welcome"]
    async with sessions() as session, session.begin():
        then = await claim_entries(session, "a", now, LEASE, senders=2)
    # Then whoever waited longest, each member with all her rows, oldest first.
    assert [row.key for row in then] == ["old-0", "old-1", "old-300", "old-301", "old-600", "old-601"]


async def test_a_sender_with_a_long_backlog_is_claimed_a_slice_at_a_time_in_order(sessions: SessionFactory) -> None:
    # A claim's write holds the database's write lock while it runs: thousands of one
    # sender's rows are taken a slice at a time, oldest first, and she stays with one claimant.
    await store(sessions, [NewInboxEntry(f"s{n}", "wecom", "busy-staff", "{}") for n in range(120)])
    now = utcnow()
    async with sessions() as session, session.begin():
        first = await claim_entries(session, "a", now, LEASE, senders=4, rows_each=50)
    assert [row.key for row in first] == [f"s{n}" for n in range(50)]
    async with sessions() as session, session.begin():
        assert await claim_entries(session, "b", now, LEASE, senders=4, rows_each=50) == []  # still a's
        for row in first:
            await mark_done(session, row.id, now, "a")  # type: ignore[arg-type]
    async with sessions() as session, session.begin():
        then = await claim_entries(session, "b", now, LEASE, senders=4, rows_each=50)
    assert [row.key for row in then] == [f"s{n}" for n in range(50, 100)]


async def test_a_member_s_rows_go_to_one_claimant_until_its_claim_expires(sessions: SessionFactory) -> None:
    await store(sessions, [NewInboxEntry(f"k{n}", "sandbox", f"m{n % 3}", "{}") for n in range(6)])
    now = utcnow()
    async with sessions() as session, session.begin():
        held = await claim_entries(session, "a", now, LEASE, senders=10)
    assert len(held) == 6
    await store(sessions, [NewInboxEntry("late", "sandbox", "m0", "{}")])  # while "a" works on m0
    async with sessions() as session, session.begin():
        assert await claim_entries(session, "b", now + timedelta(seconds=5), LEASE, senders=10) == []
        await mark_done(session, held[0].id, now, "a")  # type: ignore[arg-type]
        await renew_claims(session, "a", now + timedelta(seconds=20), LEASE)
    async with sessions() as session, session.begin():
        # Renewed: still a's at 40 s. At 60 s "a" has stopped renewing (it died): b takes over.
        assert await claim_entries(session, "b", now + timedelta(seconds=40), LEASE, senders=10) == []
        taken = await claim_entries(session, "b", now + timedelta(seconds=60), LEASE, senders=10)
    assert sorted(row.key for row in taken) == ["k1", "k2", "k3", "k4", "k5", "late"]
    with pytest.raises(ClaimLost):  # a's late work on a row b took over does not count
        async with sessions() as session, session.begin():
            await mark_done(session, held[1].id, now, "a")  # type: ignore[arg-type]
    async with sessions() as session, session.begin():
        await mark_done(session, held[1].id, now, "b")  # type: ignore[arg-type]
    async with sessions() as session:
        row = await session.get(InboxEntry, held[1].id)
    assert row is not None and (row.status, row.claimed_by) == ("done", "b")


async def test_tag_hits_and_interest_counted_at_once_are_all_counted(sessions: SessionFactory) -> None:
    now = utcnow()
    async with sessions() as session, session.begin():
        member = await resolve_member(session, "sandbox", "王芳", None, now)
        tag = await ensure_tag(session, "面包控", "口味偏好")
        await apply_tag(session, member.id, tag, "rule", "interest-bread", now)  # type: ignore[arg-type]
        await add_interest(session, member.id, "面包", 2, now)  # type: ignore[arg-type]

    async def hit() -> None:
        async with sessions() as session, session.begin():
            await apply_tag(session, member.id, tag, "rule", "interest-bread", now)  # type: ignore[arg-type]
            await add_interest(session, member.id, "面包", 2, now)  # type: ignore[arg-type]

    await asyncio.gather(*(hit() for _ in range(10)))
    async with sessions() as session:
        (view,) = await tags_of(session, member.id)  # type: ignore[arg-type]
        interests = await interests_of(session, member.id)  # type: ignore[arg-type]
    assert (view.hit_count, interests) == (11, {"面包": 22})


async def test_a_welcome_code_is_stored_urgent_and_a_message_is_not(
    cloud: FakeWeComCloud, db_url: str, tmp_path: Path, http: aiohttp.ClientSession, sessions: SessionFactory
) -> None:
    # A webhook-only process stores and acknowledges; nothing here handles the rows.
    config = write_config(tmp_path, db_url, wecom_config(cloud.base_url) + '\n[server]\nrole = "webhook"\n')
    running = await start_server(build_app(load_settings(config)), http)
    corp = Corp(cloud, running, sessions)
    try:
        code = cloud.issue_welcome_code("wmUrgent", "zhangsan")
        assert (await corp.callback(contact_event("add_external_contact", "wmUrgent", WelcomeCode=code)))[0] == 200
        assert (await corp.callback(contact_event("add_external_contact", "wmNoCode")))[0] == 200
        assert (await corp.callback(contact_event("del_follow_user", "wmGone")))[0] == 200
    finally:
        await running.stop()
    async with sessions() as session:
        flags = dict((await session.execute(select(InboxEntry.sender, InboxEntry.urgent))).all())
    assert flags == {"wmUrgent": True, "wmNoCode": False, "wmGone": False}


@pytest.mark.parametrize("line", ["pool_size = 0", "max_overflow = -1", "inbox_lease_seconds = 0", "pool_size = 1000"])
def test_pool_sizes_and_the_lease_out_of_range_are_refused(tmp_path: Path, line: str) -> None:
    config = tmp_path / "siyu.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///siyu.db"\n{line}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert any(line.split()[0] in problem for problem in caught.value.problems)


async def test_with_every_slot_busy_only_urgent_members_are_claimed(sessions: SessionFactory) -> None:
    await store(sessions, [NewInboxEntry(f"old-{n}", "wecom", f"m{n}", "{}") for n in range(5)])
    await store(sessions, [NewInboxEntry("welcome", "wecom", "newcomer", "{}", urgent=True)])
    now = utcnow()
    async with sessions() as session, session.begin():
        assert [r.key for r in await claim_entries(session, "a", now, LEASE, senders=9, urgent_only=True)] == ["welcome"]
        assert await claim_entries(session, "a", now, LEASE, senders=9, urgent_only=True) == []


async def test_a_member_claimed_by_another_process_after_she_was_chosen_is_left_to_it(
        sessions: SessionFactory) -> None:
    # Members are chosen by reading alone, before the write lock; another process may
    # claim one of them in between, and the write must see it.
    await store(sessions, [NewInboxEntry(f"k{n}", "wecom", f"m{n % 2}", "{}") for n in range(4)])
    now = utcnow()
    engine = sessions.kw["bind"].sync_engine
    interloped: list[str] = []

    def claim_m0_first(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("UPDATE inbox SET claimed_by") and not interloped:
            interloped.append(statement)
            conn.execute(update(INBOX).where(INBOX.c.sender == "m0").values(claimed_by="b", claim_until=now + LEASE))

    event.listen(engine, "before_cursor_execute", claim_m0_first)
    try:
        async with sessions() as session, session.begin():
            taken = await claim_entries(session, "a", now, LEASE, senders=10)
    finally:
        event.remove(engine, "before_cursor_execute", claim_m0_first)
    assert interloped
    assert [row.key for row in taken] == ["k1", "k3"]
    async with sessions() as session:
        owners = dict((await session.execute(select(INBOX.c.key, INBOX.c.claimed_by))).all())
    assert owners == {"k0": "b", "k1": "a", "k2": "b", "k3": "a"}


async def test_a_claim_that_finds_nobody_free_does_not_wait_for_the_write_lock(
        sessions: SessionFactory, db_url: str) -> None:
    # On SQLite the acknowledgements' inserts share one write lock with claims: a
    # dispatcher looking for work (every member in hand) must not queue for it.
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's one write lock; PostgreSQL's claims do not block inserts")
    await store(sessions, [NewInboxEntry(f"k{n}", "wecom", f"m{n}", "{}") for n in range(3)])
    now = utcnow()
    async with sessions() as session, session.begin():
        assert len(await claim_entries(session, "a", now, LEASE, senders=10)) == 3
    other = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        async with sessions() as session, session.begin():
            assert await asyncio.wait_for(claim_entries(session, "b", now, LEASE, senders=10), 2) == []
    finally:
        other.execute("ROLLBACK")
        other.close()
