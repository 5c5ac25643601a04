"""Short-lived secrets shared by every process on one database (access tokens, JS-SDK
tickets): table `shared_values`. One process fetches a stale value while the others wait
for it — on PostgreSQL under a transaction-level advisory lock on the value's name (the
others block on the lock, then read what it stored); on SQLite, which serves one process,
under a lock of this process. The value is read again under the lock, so nobody fetches
twice. Matches the `SharedValues` protocol (bot/platforms/wecom/shared_values.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialects import upsert
from storage.engine import SessionFactory
from storage.models import SharedValue, as_utc, utcnow
from storage.tables import SHARED_VALUES

Fetched = tuple[str, int]  # the value and its lifetime in seconds


async def advisory_lock(session: AsyncSession, name: str) -> None:
    """On PostgreSQL, wait for the transaction-scoped advisory lock on `name` (released at
    commit or rollback); on SQLite nothing (one process, one writer)."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(name))))


class DatabaseValues:
    def __init__(self, sessions: SessionFactory, clock: Callable[[], datetime] = utcnow):
        self._sessions = sessions
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}

    async def read(self, name: str) -> tuple[str, float] | None:
        async with self._sessions() as session:
            return await self._read(session, name)

    async def _read(self, session: AsyncSession, name: str) -> tuple[str, float] | None:
        row = (await session.execute(select(SharedValue).where(SharedValue.name == name))).scalar_one_or_none()
        if row is None:
            return None
        expires = as_utc(row.expires_at)
        left = (expires - self._clock()).total_seconds()
        return (row.value, left) if left > 0 else None

    async def fetch(
        self, name: str, fetch: Callable[[], Awaitable[Fetched]], fresher_than: float
    ) -> tuple[str, float]:
        async with self._locks.setdefault(name, asyncio.Lock()):  # this process's callers share one fetch
            found = await self.read(name)
            if found is not None and found[1] > fresher_than:
                return found
            if self._sessions.kw["bind"].dialect.name != "postgresql":
                # SQLite: one process, and its one connection must not wait on an HTTP call.
                value, lifetime = await fetch()
                async with self._sessions() as session, session.begin():
                    await self._store(session, name, value, lifetime)
                return value, float(lifetime)
            async with self._sessions() as session, session.begin():
                await advisory_lock(session, f"siyu:shared:{name}")  # other processes' fetchers wait here
                found = await self._read(session, name)
                if found is not None and found[1] > fresher_than:
                    return found
                value, lifetime = await fetch()
                await self._store(session, name, value, lifetime)
                return value, float(lifetime)

    async def _store(self, session: AsyncSession, name: str, value: str, lifetime: int) -> None:
        now = self._clock()
        await session.execute(upsert(SHARED_VALUES, session.bind.dialect.name, ["name"], {
            "name": name, "value": value, "expires_at": now + timedelta(seconds=lifetime), "updated_at": now,
        }))

    async def forget(self, name: str, value: str) -> None:
        """Drop the value if it is still the one that failed (another process may have
        stored a new one since)."""
        async with self._sessions() as session, session.begin():
            await session.execute(delete(SharedValue).where(SharedValue.name == name, SharedValue.value == value))  # type: ignore[arg-type]
