"""The inbox: every update a platform handed us, stored before we acknowledge it.

Writes go through one `InboxWriter` that group-commits: while one batch is being
committed, new arrivals queue up and form the next batch, so a lone request waits for a
single commit and a crowd shares them. The ORM stays off this path (SQLAlchemy Core).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import bindparam, case, func, literal, literal_column, select, text, union_all, update
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from storage.dialects import insert_ignoring_conflicts
from storage.engine import sqlite_file
from storage.models import InboxEntry, utcnow
from storage.sqlite_thread import SqliteThread
from storage.tables import INBOX

log = logging.getLogger(__name__)



class NewInboxEntry(NamedTuple):
    """An update to store (made once per callback: a named tuple is made several times
    faster than a frozen dataclass, which sets each field through object.__setattr__)."""

    key: str
    platform: str
    sender: str
    payload: str
    urgent: bool = False  # handled ahead of any backlog (a welcome code lives 20 s)


class InboxClosed(RuntimeError):
    pass


class InboxWriter:
    """Durably stores inbox entries in batches; `add` returns once its batch committed."""

    def __init__(
        self,
        engine: AsyncEngine,
        on_commit: Callable[[], None] = lambda: None,
        on_urgent: Callable[[], None] | None = None,
        on_stored: Callable[[int], None] = lambda count: None,
    ):
        """`on_commit` is called after each commit; `on_urgent` instead when the batch
        held an urgent row (a welcome code waiting); `on_stored` with the number of
        entries each commit acknowledged."""
        self._engine = engine
        self._on_commit = on_commit
        self._on_urgent = on_urgent or on_commit
        self._on_stored = on_stored
        self._sql, self._positional, self._stamp = _compiled_insert(engine)
        # On a SQLite file the batches skip the engine (storage/sqlite_thread.py says why).
        file = sqlite_file(engine.url.render_as_string(hide_password=False))
        self._sqlite = SqliteThread(file, "inbox-writer") if file is not None else None
        # What arrived since the last batch was taken, and a flag raised on arrival: cheaper
        # per callback than an asyncio.Queue, which the writer emptied item by item.
        self._waiting: list[tuple[NewInboxEntry, asyncio.Future[None]]] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inbox-writer")

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        self._closing = True
        self._arrived.set()
        if self._task is not None:
            await self._task
        if self._sqlite is not None:
            await self._sqlite.close()

    async def add(self, entry: NewInboxEntry) -> None:
        """Store `entry` (a duplicate key is silently kept once) and wait for the commit."""
        if self._closing:
            raise InboxClosed("the inbox is closing")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((entry, done))
        self._arrived.set()
        await done

    async def _run(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            batch, self._waiting = self._waiting, []
            if batch:
                await self._commit(batch)
            if self._closing and not self._waiting:
                return

    async def _commit(self, batch: list[tuple[NewInboxEntry, asyncio.Future[None]]]) -> None:
        try:
            await self._insert([entry for entry, _ in batch])
        except Exception as error:
            if len(batch) > 1:
                # One bad entry must not fail its neighbours: store them one by one.
                for item in batch:
                    await self._commit([item])
                return
            log.exception("inbox commit failed")
            _, done = batch[0]
            if not done.done():
                done.set_exception(error)
            return
        for _, done in batch:
            if not done.done():
                done.set_result(None)
        self._on_stored(len(batch))
        (self._on_urgent if any(entry.urgent for entry, _ in batch) else self._on_commit)()

    async def _insert(self, entries: list[NewInboxEntry]) -> None:
        received_at = self._stamp(utcnow())
        rows = [(e.key, e.platform, e.sender, e.payload, received_at, e.urgent) for e in entries]
        if self._sqlite is not None:
            await self._sqlite.run(lambda connection: _insert_on_sqlite(connection, rows))
            return
        params: list[Any] = rows if self._positional else [dict(zip(_COLUMNS, row)) for row in rows]
        async with self._engine.begin() as connection:
            await connection.exec_driver_sql(self._sql, params)


_COLUMNS = ("key", "platform", "sender", "payload", "received_at", "urgent")


def _new_row(suffix: str = "") -> dict[str, Any]:
    """One row's VALUES: a parameter per column (named with `suffix`), pending, no attempt."""
    return {name: bindparam(f"{name}{suffix}") for name in _COLUMNS} | {
        "status": literal_column("'pending'"), "attempts": literal_column("0")}


def _compiled_insert(engine: AsyncEngine) -> tuple[str, bool, Callable[[datetime], Any]]:
    """The insert compiled once, for the driver directly: on this path SQLAlchemy's
    per-row parameter processing would cost more than the commit."""
    dialect = engine.sync_engine.dialect
    statement = insert_ignoring_conflicts(INBOX, dialect.name, ["key"]).inline().values(_new_row())
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    if compiled.positional:
        assert list(compiled.positiontup or ()) == list(_COLUMNS), compiled.positiontup
    # The dialect's own form of the type: on SQLite that is the text every other write
    # of a time uses, so times sort and compare alike.
    stamp = INBOX.c.received_at.type.dialect_impl(dialect).bind_processor(dialect) or (lambda value: value)
    return str(compiled), bool(compiled.positional), stamp


# Rows per statement on SQLite: 6 parameters each, far below its limit of 32,766.
_SQLITE_ROWS_PER_STATEMENT = 500


def _insert_on_sqlite(connection: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """A batch as one multi-row INSERT (per 500 rows): SQLite runs it in one step, where
    executemany stepped — and let go of the GIL, and reset the statement — once a row."""
    for start in range(0, len(rows), _SQLITE_ROWS_PER_STATEMENT):
        chunk = rows[start:start + _SQLITE_ROWS_PER_STATEMENT]
        connection.execute(_sqlite_insert_of(len(chunk)), [value for row in chunk for value in row])


@functools.lru_cache(maxsize=64)
def _sqlite_insert_of(count: int) -> str:
    """INSERT of `count` rows, ignoring a key stored already (ids follow the rows' order)."""
    statement = insert_ignoring_conflicts(INBOX, "sqlite", ["key"]).values([_new_row(f"_{n}") for n in range(count)])
    compiled = statement.compile(dialect=sqlite_dialect())
    assert list(compiled.positiontup or ()) == [f"{name}_{n}" for n in range(count) for name in _COLUMNS]
    return str(compiled)


async def pending_entries(session: AsyncSession, limit: int) -> Sequence[InboxEntry]:
    """Unprocessed entries, oldest first (what waits; the dispatcher claims its own)."""
    statement = (
        select(InboxEntry)
        .where(InboxEntry.status == "pending")
        .order_by(InboxEntry.id)  # type: ignore[arg-type]
        .limit(limit)
    )
    return (await session.execute(statement)).scalars().all()


# Claims are taken one process at a time (a transaction-scoped advisory lock on
# PostgreSQL; SQLite has one writer anyway), so a claim always sees every claim before it.
_CLAIM_LOCK = 0x5349_5955_0001


async def _lock_claims(session: AsyncSession) -> None:
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK})


def _in_hand(platform: Any, sender: Any, now: datetime) -> Any:
    """Some process is handling this member: one of her pending rows carries a live claim."""
    other = INBOX.alias("other")
    return (
        select(other.c.id)
        .where(other.c.platform == platform, other.c.sender == sender,
               other.c.status == "pending", other.c.claim_until >= now)
        .exists()
    )


def _oldest_rows_if_free(platform: str, sender: str, now: datetime, rows: int) -> Any:
    """The ids of a member's oldest `rows` pending rows; none if someone holds her now."""
    oldest = (
        select(INBOX.c.id)
        .where(INBOX.c.platform == platform, INBOX.c.sender == sender, INBOX.c.status == "pending",
               ~_in_hand(literal(platform), literal(sender), now))
        .order_by(INBOX.c.id)
        .limit(rows)
        .subquery()
    )
    return select(oldest.c.id)  # a SELECT of its own: SQLite allows no LIMIT inside a UNION


async def claim_entries(
    session: AsyncSession,
    owner: str,
    now: datetime,
    lease: timedelta,
    senders: int,
    window: int = 1000,
    urgent_only: bool = False,
    rows_each: int = 50,
) -> list[InboxEntry]:
    """Claim the oldest pending rows (up to `rows_each`) of up to `senders` members whose
    rows nobody is handling: urgent members first, then the longest waiting. Call inside
    a transaction.

    A member (platform, sender) is free when none of her pending rows carries a live
    claim: so her rows go to one process at a time, and a row that arrives while she is
    being handled waits until that claim's rows are done. Expired claims (their process
    died) count as free, which is how a crash is taken over. `urgent_only`: only members
    with an urgent row waiting."""
    await _lock_claims(session)
    # The members are chosen among the first rows in line (urgent, then oldest), not the
    # whole backlog: a claim stays one index range scan however long the inbox grows.
    line = (
        select(INBOX.c.id, INBOX.c.platform, INBOX.c.sender, INBOX.c.urgent)
        .where(INBOX.c.status == "pending", *([INBOX.c.urgent] if urgent_only else []))
        .order_by(INBOX.c.urgent.desc(), INBOX.c.id)
        .limit(window)
        .subquery("line")
    )
    waiting = (
        select(line.c.platform, line.c.sender, func.max(case((line.c.urgent, 1), else_=0)).label("urgent"),
               func.min(line.c.id).label("first"))
        .group_by(line.c.platform, line.c.sender)
        .subquery("waiting")
    )
    # Chosen by reading alone: on SQLite this runs before the transaction takes the one
    # write lock (the driver begins at the first write), so acknowledgements' inserts go
    # on meanwhile. Whether each member is still free is asked again under the lock.
    chosen = (await session.execute(
        select(waiting.c.platform, waiting.c.sender)
        .where(~_in_hand(waiting.c.platform, waiting.c.sender, now))
        .order_by(waiting.c.urgent.desc(), waiting.c.first)
        .limit(senders)
    )).all()
    if not chosen:
        return []
    # Each member's oldest `rows_each` rows: the member stays in hand while they are, and a
    # backlog of thousands from one sender is neither written nor read whole in one claim.
    ids = [_oldest_rows_if_free(platform, sender, now, rows_each) for platform, sender in chosen]
    statement = (
        update(InboxEntry)
        .where(InboxEntry.status == "pending",  # type: ignore[arg-type]
               InboxEntry.id.in_(ids[0] if len(ids) == 1 else union_all(*ids)))  # type: ignore[union-attr]
        .values(claimed_by=owner, claim_until=now + lease)
        .returning(InboxEntry)
        .execution_options(synchronize_session=False)
    )
    rows = (await session.execute(statement)).scalars().all()
    return sorted(rows, key=lambda row: row.id or 0)


@dataclass(frozen=True, slots=True)
class UrgentRow:
    id: int
    key: str
    payload: str
    received_at: datetime


async def take_urgent(session: AsyncSession, now: datetime, limit: int) -> list[UrgentRow]:
    """Pending urgent rows (a welcome code waiting) of members nobody is handling, oldest
    first, for their urgent part alone; call inside a transaction that ends with
    `mark_not_urgent`. Under the claim lock, so no process claims them meanwhile."""
    await _lock_claims(session)
    statement = (
        select(INBOX.c.id, INBOX.c.key, INBOX.c.payload, INBOX.c.received_at)
        .where(INBOX.c.status == "pending", INBOX.c.urgent, ~_in_hand(INBOX.c.platform, INBOX.c.sender, now))
        .order_by(INBOX.c.id)  # one range of ix_inbox_status_urgent_id
        .limit(limit)
    )
    return [UrgentRow(*row) for row in (await session.execute(statement)).all()]


async def mark_not_urgent(session: AsyncSession, ids: Sequence[int]) -> None:
    """Their urgent part is done: the rest of their handling takes its turn in line."""
    if ids:
        await session.execute(update(INBOX).where(INBOX.c.id.in_(list(ids))).values(urgent=False))


async def renew_claims(session: AsyncSession, owner: str, now: datetime, lease: timedelta) -> int:
    """Extend this process's live claims (it is still handling them)."""
    result = await session.execute(
        update(INBOX)
        .where(INBOX.c.status == "pending", INBOX.c.claimed_by == owner)
        .values(claim_until=now + lease)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def release_claims(session: AsyncSession, owner: str, platform: str, sender: str) -> None:
    """Hand a member's rows back (a row failed and will be tried again, or we stop)."""
    await session.execute(
        update(INBOX)
        .where(INBOX.c.status == "pending", INBOX.c.claimed_by == owner,
               INBOX.c.platform == platform, INBOX.c.sender == sender)
        .values(claimed_by=None, claim_until=None)
    )


async def release_all_claims(session: AsyncSession, owner: str) -> None:
    """Hand back every row this process claimed and did not handle (a clean stop)."""
    await session.execute(
        update(INBOX).where(INBOX.c.status == "pending", INBOX.c.claimed_by == owner)
        .values(claimed_by=None, claim_until=None)
    )


class ClaimLost(RuntimeError):
    """Another process took the row over (this one's claim had expired): our handling of
    it rolls back, so it is handled once, by the new claimant."""


async def mark_done(session: AsyncSession, entry_id: int, now: datetime, owner: str | None = None) -> None:
    """Mark the row handled; with `owner`, only while that process still holds its claim
    (else `ClaimLost`, and the caller's transaction must roll back)."""
    statement = update(INBOX).where(INBOX.c.id == entry_id)
    if owner is not None:
        statement = statement.where(INBOX.c.claimed_by == owner, INBOX.c.status == "pending")
    result = await session.execute(statement.values(status="done", processed_at=now))
    if owner is not None and not result.rowcount:  # type: ignore[attr-defined]
        raise ClaimLost(f"inbox row {entry_id} was taken over by another process")


async def record_failure(
    session: AsyncSession, entry_id: int, error: str, now: datetime, max_attempts: int
) -> bool:
    """Count a failed attempt; after `max_attempts` the entry is parked as failed.

    Returns True when the entry was parked.
    """
    entry = await session.get(InboxEntry, entry_id)
    if entry is None:
        return False
    entry.attempts += 1
    entry.error = error
    parked = entry.attempts >= max_attempts
    if parked:
        entry.status = "failed"
        entry.processed_at = now
    session.add(entry)
    return parked
