"""Storage on a real database: SQLite, and PostgreSQL where SIYU_TEST_PG_URL is set."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, select, text
from sqlalchemy.schema import CreateIndex
from sqlmodel import SQLModel

from storage.dialects import month_day
from storage.engine import SessionFactory, create_sync_engine
from storage.inbox import InboxWriter, NewInboxEntry, pending_entries, record_failure
from storage.members import find_member, masked_phone, resolve_member
from storage.migrate import downgrade, pending_revisions, upgrade
from storage.models import InboxEntry, Member, OutboxEntry, StaffTask, utcnow
from storage.outbox import UNKNOWN_OUTCOME, NewOutboxMessage, claim_due, enqueue, reap_expired
from storage.tags import apply_tag, ensure_tag, tags_of
from storage.tasks import NewTask, create_tasks


# SQLite's indexes on expressions cannot be reflected, so autogenerate skips them (and says
# so): the test below compares their SQL instead.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_migrations_build_exactly_the_models(db_url: str) -> None:
    assert pending_revisions(db_url) == []
    engine = create_sync_engine(db_url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
            stored = dict(connection.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index'")).all()) \
                if engine.dialect.name == "sqlite" else {}
        on_expressions = [index for table in SQLModel.metadata.tables.values() for index in table.indexes
                          if not all(isinstance(e, Column) for e in index.expressions)]
        assert on_expressions  # the care scan's month-day index, at least
        if engine.dialect.name == "sqlite":
            for index in on_expressions:
                assert stored.get(index.name) == str(CreateIndex(index).compile(dialect=engine.dialect))
    finally:
        engine.dispose()
    assert diff == []


def test_the_care_indexes_migration_undoes_and_redoes_on_a_database_with_members(
    tmp_path, request: pytest.FixtureRequest
) -> None:
    """0017 and 0018 (the care scan's indexes) roll back for an older siyu and come back, members
    kept; the month-day of a joining day, as the care scan asks for it, is right on both
    databases (29 February included)."""
    from tests.conftest import PG_URL, _reset_postgres

    urls = [f"sqlite:///{tmp_path / 'old.db'}"]
    if PG_URL:
        _reset_postgres(PG_URL)
        urls.append(PG_URL)
    joined = select(Member.name).where(month_day(Member.member_since).in_([1123, 229]))  # type: ignore[arg-type]
    for url in urls:
        upgrade(url, "0016")
        engine = create_sync_engine(url)
        try:
            with engine.begin() as connection:
                for name, since in (("王芳", "2020-11-23"), ("闰日", "2024-02-29"), ("李娜", "2021-11-24")):
                    connection.execute(text(
                        "INSERT INTO members (name, member_since, birth_md, birthday_calendar, birthday_leap_month,"
                        " paid_member, created_at, updated_at) VALUES (:name, :since, 1123, 'solar', false, false,"
                        " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                    ), {"name": name, "since": date.fromisoformat(since)})
            upgrade(url)
            downgrade(url, "0016")
            with engine.connect() as connection:
                assert connection.execute(text("SELECT count(*) FROM members WHERE birth_md = 1123")).scalar_one() == 3
            upgrade(url)
            assert pending_revisions(url) == []
            with engine.connect() as connection:
                assert sorted(connection.execute(joined).scalars()) == ["王芳", "闰日"]
        finally:
            engine.dispose()


@pytest.mark.parametrize("start", ["0002", "0003"])
def test_every_migration_upgrades_a_database_that_holds_data(start: str, tmp_path, request: pytest.FixtureRequest) -> None:
    """Migrations run on brands' live databases, not only on empty ones."""
    from tests.conftest import PG_URL, _reset_postgres

    urls = [f"sqlite:///{tmp_path / 'old.db'}"]
    if PG_URL:
        _reset_postgres(PG_URL)
        urls.append(PG_URL)
    for url in urls:
        upgrade(url, start)
        engine = create_sync_engine(url)
        try:
            with engine.begin() as connection:
                connection.execute(text(
                    "INSERT INTO members (name, birthday_calendar, birthday_leap_month, paid_member, created_at, updated_at)"
                    " VALUES ('王芳', 'solar', false, false, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                ))
                member_id = connection.execute(text("SELECT id FROM members")).scalar_one()
                connection.execute(text(
                    "INSERT INTO member_identities (member_id, platform, external_id, created_at)"
                    f" VALUES ({member_id}, 'sandbox', '王芳', '2026-01-01 00:00:00')"
                ))
                connection.execute(text(
                    "INSERT INTO orders (order_no, member_id, amount_cents, ordered_at)"
                    f" VALUES ('A-1', {member_id}, 3800, '2026-01-02 00:00:00')"
                ))
            upgrade(url)
            assert pending_revisions(url) == []
            with engine.connect() as connection:
                assert connection.execute(text("SELECT count(*) FROM orders")).scalar_one() == 1
                assert connection.execute(text("SELECT name FROM members")).scalar_one() == "王芳"
        finally:
            engine.dispose()


async def test_the_inbox_stores_concurrent_entries_once_each(sessions: SessionFactory) -> None:
    writer = InboxWriter(sessions.kw["bind"])
    writer.start()
    # More than one statement holds on SQLite (500 rows), each key twice, in different ones.
    entries = [NewInboxEntry(f"k{n % 650}", "sandbox", f"m{n % 7}", "{}") for n in range(1300)]
    await asyncio.gather(*(writer.add(e) for e in entries))
    await writer.close()
    async with sessions() as session:
        stored = await pending_entries(session, 2000)
    assert [e.key for e in stored] == [f"k{n}" for n in range(650)]  # once each, in the order they came


async def test_an_inbox_write_that_fails_tells_the_caller(sessions: SessionFactory) -> None:
    writer = InboxWriter(sessions.kw["bind"])
    writer.start()
    bad = NewInboxEntry("bad", "sandbox", "m", None)  # type: ignore[arg-type]
    results = await asyncio.gather(
        writer.add(NewInboxEntry("ok", "sandbox", "m", "{}")), writer.add(bad), return_exceptions=True
    )
    await writer.close()
    # The request whose entry failed learns it (and answers 5xx, so the platform retries);
    # its neighbour in the same batch is stored.
    assert results[0] is None and isinstance(results[1], Exception)
    async with sessions() as session:
        assert [e.key for e in await pending_entries(session, 10)] == ["ok"]


async def test_a_failing_inbox_row_is_parked_after_its_last_attempt(sessions: SessionFactory) -> None:
    writer = InboxWriter(sessions.kw["bind"])
    writer.start()
    await writer.add(NewInboxEntry("bad", "sandbox", "m", "not json"))
    await writer.close()
    async with sessions() as session, session.begin():
        (entry,) = await pending_entries(session, 10)
        assert entry.id is not None
        assert [await record_failure(session, entry.id, "boom", utcnow(), 3) for _ in range(3)] == [False, False, True]
    async with sessions() as session:
        row = (await session.execute(select(InboxEntry))).scalar_one()
    assert (row.status, row.attempts, row.error) == ("failed", 3, "boom")


async def test_a_member_is_resolved_once_per_identity_and_found_by_any_id(sessions: SessionFactory) -> None:
    now = utcnow()
    async with sessions() as session, session.begin():
        first = await resolve_member(session, "sandbox", "王芳", "王芳", now)
        again = await resolve_member(session, "sandbox", "王芳", None, now)
        other = await resolve_member(session, "wecom", "wmAbc", None, now)
        first.unionid = "union-1"
    assert first.id == again.id != other.id
    async with sessions() as session:
        assert (await find_member(session, str(first.id))).id == first.id  # type: ignore[union-attr]
        assert (await find_member(session, "王芳")).id == first.id  # type: ignore[union-attr]
        assert (await find_member(session, "union-1")).id == first.id  # type: ignore[union-attr]
        assert (await find_member(session, "wmAbc")).id == other.id  # type: ignore[union-attr]
        assert await find_member(session, "nobody") is None
        assert len((await session.execute(select(Member))).scalars().all()) == 2


async def test_a_tag_keeps_its_source_and_counts_hits(sessions: SessionFactory) -> None:
    now = utcnow()
    async with sessions() as session, session.begin():
        member = await resolve_member(session, "sandbox", "李娜", None, now)
        tag = await ensure_tag(session, "面包控", "口味偏好")
        assert (await ensure_tag(session, "面包控", "口味偏好")).id == tag.id
        assert await apply_tag(session, member.id, tag, "rule", "interest-bread", now) is True  # type: ignore[arg-type]
        assert await apply_tag(session, member.id, tag, "rule", "interest-bread", now) is False  # type: ignore[arg-type]
    async with sessions() as session:
        (view,) = await tags_of(session, member.id)  # type: ignore[arg-type]
    assert (view.name, view.group, view.source, view.source_ref, view.hit_count) == (
        "面包控", "口味偏好", "rule", "interest-bread", 2,
    )


async def test_the_outbox_keeps_one_row_per_dedupe_key_and_only_lapsed_claims_are_reaped(sessions: SessionFactory) -> None:
    now = utcnow()
    message = NewOutboxMessage("care:birthday:1:2026", "sandbox", "王芳", "care", "生日快乐")
    async with sessions() as session, session.begin():
        await enqueue(session, [message, message], now)
        await enqueue(session, [message], now)
    async with sessions() as session, session.begin():
        claimed = await claim_due(session, now, 10, "worker-1", timedelta(seconds=30))
        assert [(r.dedupe_key, r.status, r.attempts, r.claimed_by) for r in claimed] == [
            ("care:birthday:1:2026", "sending", 1, "worker-1")]
        assert await claim_due(session, now, 10, "worker-2") == []
    async with sessions() as session, session.begin():
        assert await reap_expired(session, now + timedelta(seconds=29)) == 0  # its owner may still be sending
        assert await reap_expired(session, now + timedelta(seconds=31)) == 1
    async with sessions() as session:
        row = (await session.execute(select(OutboxEntry))).scalar_one()
    assert (row.status, row.claimed_by) == ("pending", None)
    assert row.last_error is not None and "worker-1" in row.last_error and UNKNOWN_OUTCOME in row.last_error


def test_phones_are_masked_for_display() -> None:
    assert masked_phone("13812345678") == "138****5678"
    assert masked_phone("12345") == "*****"
    assert masked_phone(None) is None


def test_a_failing_migration_leaves_a_sqlite_database_as_it_was(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0003")
    engine = create_sync_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE layer_runs (x INTEGER)"))  # in the way of 0004
        with pytest.raises(Exception, match="layer_runs"):
            upgrade(url)
        with engine.connect() as connection:
            tables = connection.execute(text("SELECT name FROM sqlite_master WHERE name = 'engagement_days'")).all()
            assert tables == [] and "0004" in pending_revisions(url)
    finally:
        engine.dispose()


async def test_the_inbox_writes_times_as_every_other_sqlite_write_does(tmp_path) -> None:
    """Times are text in SQLite: one form everywhere, or they sort wrongly against each other."""
    import re

    from storage.engine import create_database_engine

    url = f"sqlite:///{tmp_path / 'siyu.db'}"
    upgrade(url)
    engine = create_database_engine(url)
    writer = InboxWriter(engine)
    writer.start()
    await writer.add(NewInboxEntry("k", "sandbox", "m", "{}"))
    await writer.close()
    async with engine.connect() as connection:
        stored = (await connection.execute(text("SELECT received_at FROM inbox"))).scalar_one()
    await engine.dispose()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", stored), stored


async def test_two_runs_saving_a_new_cursor_at_once_both_succeed(db_url: str, sessions: SessionFactory) -> None:
    """The calendar scan run by the scheduler and by hand in the same minute: the second
    one's save used to fail on the first one's new row (a duplicate key on PostgreSQL)."""
    from storage.cursors import load_cursor, save_cursor

    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite gives a process one connection: two saves cannot interleave there")

    both_read = asyncio.Barrier(2)

    async def scan(stamp: str) -> None:
        async with sessions() as session, session.begin():
            await load_cursor(session, "calendar:last_scan")  # neither finds a row
            await both_read.wait()
            await save_cursor(session, "calendar:last_scan", stamp, utcnow())

    results = await asyncio.gather(scan("a"), scan("b"), return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    async with sessions() as session:
        assert await load_cursor(session, "calendar:last_scan") in {"a", "b"}


async def test_rows_queued_in_bulk_are_stored_as_the_orm_stores_them(sessions: SessionFactory) -> None:
    """On SQLite, outbox rows and tasks made by the thousand go to the driver without
    SQLAlchemy's types: they must be stored exactly as the ORM stores them, or what SQL
    compares (rows due, a day's tasks) would go wrong."""
    now = datetime(2026, 11, 23, 6, 5, 7, 123, tzinfo=ZoneInfo("Asia/Shanghai"))  # not UTC, on purpose
    later = now + timedelta(hours=4)
    async with sessions() as session, session.begin():
        await enqueue(session, [NewOutboxMessage("bulk", "sandbox", "小美", "care", "你好", not_before=later)], now)
        await enqueue(session, [NewOutboxMessage("bulk-now", "sandbox", "小美", "care", "你好")], now)
        session.add(OutboxEntry(dedupe_key="orm", platform="sandbox", recipient="小美", kind="care", body="你好",
                                not_before=later, created_at=now))
        session.add(OutboxEntry(dedupe_key="orm-now", platform="sandbox", recipient="小美", kind="care", body="你好",
                                not_before=now, created_at=now))
        await create_tasks(session, [NewTask("bulk", "care", "生日", date(2026, 11, 23))], now)
        session.add(StaffTask(dedupe_key="orm", kind="care", title="生日", due_date=date(2026, 11, 23), created_at=now))
    async with sessions() as session:
        stored = {key: rest for key, *rest in await session.execute(text(
            "SELECT dedupe_key, not_before, created_at, status, attempts, route, meta FROM outbox"))}
        tasks = {key: rest for key, *rest in await session.execute(text(
            "SELECT dedupe_key, due_date, created_at, status FROM staff_tasks"))}
    assert stored["bulk"] == stored["orm"] and stored["bulk-now"] == stored["orm-now"]
    assert tasks["bulk"] == tasks["orm"]
    with pytest.raises(Exception, match="must have timezone information"):  # as the ORM refuses it
        async with sessions() as session, session.begin():
            await enqueue(session, [NewOutboxMessage("naive", "sandbox", "小美", "care", "你好")], now.replace(tzinfo=None))
