"""What the scheduler keeps in the database: each job's last run, and who leads.

Leadership: exactly one process per database runs the scheduled jobs. On PostgreSQL it
is a session advisory lock held on a connection of its own (the lock ends with that
connection, so a process killed outright frees it at once); on SQLite, which has none,
a lease row the leader renews and another process takes once it has expired.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from storage.dialects import insert_ignoring_conflicts
from storage.engine import SessionFactory, async_url
from storage.models import RuntimeLease, SchedulerRun, utcnow

log = logging.getLogger(__name__)

# pg_try_advisory_lock's key for "the scheduler of this database" ("siyu" and 1).
SCHEDULER_LOCK_KEY = 0x7369_7975_0001
SCHEDULER_LEASE = "scheduler"


def process_name() -> str:
    """Who holds a lease or ran a job, as operators read it: host, pid and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


# ── Each job's last run ─────────────────────────────────────────────────────────────


async def last_run(session: AsyncSession, job: str) -> SchedulerRun | None:
    return await session.get(SchedulerRun, job)


async def record_run(
    session: AsyncSession,
    job: str,
    *,
    holder: str,
    status: str,
    fired_at: datetime | None = None,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    detail: str | None = None,
) -> None:
    """Note a run's start (status running, `fired_at` untouched) or end (`fired_at` moved)."""
    row = await session.get(SchedulerRun, job)
    if row is None:
        row = SchedulerRun(job=job, fired_at=fired_at or started_at or utcnow())
    if fired_at is not None:
        row.fired_at = fired_at
    if started_at is not None:
        row.started_at, row.finished_at = started_at, None
    if finished_at is not None:
        row.finished_at = finished_at
    row.status, row.holder, row.detail = status, holder, detail
    session.add(row)


# ── Leadership ──────────────────────────────────────────────────────────────────────


class Leadership(Protocol):
    holder: str

    async def hold(self) -> bool:
        """Take or keep leadership; True while this process holds it. Raises when the
        database cannot say (the caller steps down)."""
        ...

    async def release(self) -> None: ...


class AdvisoryLock:
    """PostgreSQL: `pg_try_advisory_lock` on a dedicated autocommit connection."""

    def __init__(self, url: str, key: int = SCHEDULER_LOCK_KEY, holder: str | None = None):
        self.holder = holder or process_name()
        self._key = key
        self._engine = create_async_engine(async_url(url), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self._connection: AsyncConnection | None = None
        self._held = False
        self._lock = asyncio.Lock()  # one statement at a time on the one connection

    async def hold(self) -> bool:
        async with self._lock:
            try:
                if self._connection is None:
                    self._connection = await self._engine.connect()
                if self._held:  # the lock lives as long as the connection: is it alive?
                    await self._connection.execute(text("SELECT 1"))
                    return True
                result = await self._connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key})
                self._held = bool(result.scalar())
                return self._held
            except Exception:
                await self._drop()
                raise

    async def release(self) -> None:
        async with self._lock:
            if self._connection is not None and self._held:
                try:
                    await self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
                except Exception:  # the connection is gone, and the lock with it
                    log.debug("advisory unlock failed", exc_info=True)
            await self._drop()
            await self._engine.dispose()

    async def _drop(self) -> None:
        self._held = False
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close()
            except Exception:
                log.debug("closing the lock connection failed", exc_info=True)


class LeaseLock:
    """SQLite: a `runtime_leases` row held until `expires_at`, renewed by each `hold()`."""

    def __init__(
        self,
        sessions: SessionFactory,
        ttl: timedelta,
        name: str = SCHEDULER_LEASE,
        holder: str | None = None,
    ):
        self.holder = holder or process_name()
        self._sessions = sessions
        self._ttl = ttl
        self._name = name
        self._valid_until: datetime | None = None

    async def hold(self) -> bool:
        now = utcnow()
        try:
            async with self._sessions() as session, session.begin():
                dialect = session.bind.dialect.name
                await session.execute(
                    insert_ignoring_conflicts(RuntimeLease.__table__, dialect, ["name"]).values(  # type: ignore[arg-type]
                        name=self._name, holder=self.holder, expires_at=now - timedelta(seconds=1), renewed_at=now
                    )
                )
                result = await session.execute(
                    update(RuntimeLease)
                    .where(RuntimeLease.name == self._name)  # type: ignore[arg-type]
                    .where((RuntimeLease.holder == self.holder) | (RuntimeLease.expires_at < now))  # type: ignore[arg-type,operator]
                    .values(holder=self.holder, expires_at=now + self._ttl, renewed_at=now)
                )
        except Exception:
            self._valid_until = None
            raise
        self._valid_until = now + self._ttl if result.rowcount == 1 else None  # type: ignore[attr-defined]
        return self._valid_until is not None

    async def release(self) -> None:
        if self._valid_until is None:
            return
        self._valid_until = None
        try:  # hand over at once rather than after the lease runs out
            async with self._sessions() as session, session.begin():
                await session.execute(
                    update(RuntimeLease)
                    .where(RuntimeLease.name == self._name, RuntimeLease.holder == self.holder)  # type: ignore[arg-type]
                    .values(expires_at=utcnow() - timedelta(seconds=1))
                )
        except Exception:
            log.warning("could not give up the scheduler lease; it expires by itself", exc_info=True)


async def database_takes_writes(session: AsyncSession, holder: str) -> None:
    """Write and commit one small row (raises when the database refuses): /healthz's probe."""
    now = utcnow()
    dialect = session.bind.dialect.name
    async with session.begin():
        await session.execute(
            insert_ignoring_conflicts(RuntimeLease.__table__, dialect, ["name"]).values(  # type: ignore[arg-type]
                name="healthz", holder=holder, expires_at=now, renewed_at=now
            )
        )
        await session.execute(
            update(RuntimeLease).where(RuntimeLease.name == "healthz").values(holder=holder, renewed_at=now)  # type: ignore[arg-type]
        )
