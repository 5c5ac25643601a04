"""The inbox: every update a platform handed us, stored before we acknowledge it.

Writes go through one `InboxWriter` that group-commits: while one batch is being
committed, new arrivals queue up and form the next batch, so a lone request waits for a
single commit and a crowd shares them. The ORM stays off this path (SQLAlchemy Core).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from storage.dialects import insert_ignoring_conflicts
from storage.models import InboxEntry, utcnow
from storage.tables import INBOX

log = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True)
class NewInboxEntry:
    key: str
    platform: str
    sender: str
    payload: str


class InboxClosed(RuntimeError):
    pass


class InboxWriter:
    """Durably stores inbox entries in batches; `add` returns once its batch committed."""

    def __init__(self, engine: AsyncEngine, on_commit: Callable[[], None] = lambda: None):
        self._engine = engine
        self._on_commit = on_commit
        self._sql, self._positional, self._stamp = _compiled_insert(engine)
        self._queue: asyncio.Queue[tuple[NewInboxEntry, asyncio.Future[None]] | None] = (
            asyncio.Queue()
        )
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inbox-writer")

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        self._closing = True
        await self._queue.put(None)
        if self._task is not None:
            await self._task

    async def add(self, entry: NewInboxEntry) -> None:
        """Store `entry` (a duplicate key is silently kept once) and wait for the commit."""
        if self._closing:
            raise InboxClosed("the inbox is closing")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((entry, done))
        await done

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            batch = [] if item is None else [item]
            stop = item is None
            while not self._queue.empty():
                more = self._queue.get_nowait()
                if more is None:
                    stop = True
                else:
                    batch.append(more)
            if batch:
                await self._commit(batch)
            if stop:
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
        self._on_commit()

    async def _insert(self, entries: list[NewInboxEntry]) -> None:
        received_at = self._stamp(utcnow())
        rows = [(e.key, e.platform, e.sender, e.payload, received_at) for e in entries]
        params: list[Any] = rows if self._positional else [dict(zip(_COLUMNS, row)) for row in rows]
        async with self._engine.begin() as connection:
            await connection.exec_driver_sql(self._sql, params)


_COLUMNS = ("key", "platform", "sender", "payload", "received_at")


def _compiled_insert(engine: AsyncEngine) -> tuple[str, bool, Callable[[datetime], Any]]:
    """The insert compiled once, for the driver directly: on this path SQLAlchemy's
    per-row parameter processing would cost more than the commit."""
    dialect = engine.sync_engine.dialect
    statement = insert_ignoring_conflicts(INBOX, dialect.name, ["key"]).inline().values(
        {name: bindparam(name) for name in _COLUMNS} | {"status": literal_column("'pending'"), "attempts": literal_column("0")}
    )
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    if compiled.positional:
        assert list(compiled.positiontup or ()) == list(_COLUMNS), compiled.positiontup
    # The dialect's own form of the type: on SQLite that is the text every other write
    # of a time uses, so times sort and compare alike.
    stamp = INBOX.c.received_at.type.dialect_impl(dialect).bind_processor(dialect) or (lambda value: value)
    return str(compiled), bool(compiled.positional), stamp


async def pending_entries(session: AsyncSession, limit: int) -> Sequence[InboxEntry]:
    """Unprocessed entries, oldest first (the dispatcher keeps per-sender order)."""
    statement = (
        select(InboxEntry)
        .where(InboxEntry.status == "pending")
        .order_by(InboxEntry.id)  # type: ignore[arg-type]
        .limit(limit)
    )
    return (await session.execute(statement)).scalars().all()


async def mark_done(session: AsyncSession, entry_id: int, now: datetime) -> None:
    await session.execute(
        update(INBOX).where(INBOX.c.id == entry_id).values(status="done", processed_at=now)
    )


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
