"""Per-recipient send limits counted in the database (table `send_slots`), so every
process on it counts the same sends: WeCom drops app messages beyond 30 a minute and
1000 an hour per staff member without saying so (WECOM.md §4.2), whichever process sent
them. On PostgreSQL a transaction-level advisory lock per key makes count-then-insert
atomic across processes; SQLite serves one process, whose lock does it. Matches the
`SendLimits` protocol (bot/platforms/wecom/ratelimit.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.engine import SessionFactory
from storage.models import as_utc, utcnow
from storage.shared_values import advisory_lock
from storage.tables import SEND_SLOTS


class DatabaseSendLimits:
    def __init__(
        self, sessions: SessionFactory, limits: Sequence[tuple[int, float]], clock: Callable[[], datetime] = utcnow
    ):
        if not limits or any(count < 1 or window <= 0 for count, window in limits):
            raise ValueError(f"bad limits {limits!r}: need (count >= 1, window > 0) pairs")
        self._sessions = sessions
        self._limits = tuple(limits)
        self._longest = timedelta(seconds=max(window for _, window in limits))
        self._clock = clock
        self._lock = asyncio.Lock()

    async def reserve(self, keys: Sequence[str]) -> float:
        """Count one send for every key and return 0, or none and return the wait."""
        keys = sorted(set(keys))  # one lock order for every process: no deadlock
        if not keys:
            return 0.0
        async with self._lock, self._sessions() as session, session.begin():
            for key in keys:
                await advisory_lock(session, f"siyu:send:{key}")
            now = self._clock()
            asked = [await self._ask(session, key, now) for key in keys]
            wait = max(wait for wait, _ in asked)
            if wait > 0:
                return wait
            if any(stale for _, stale in asked):  # slots that left every window are not kept
                await session.execute(delete(SEND_SLOTS).where(
                    SEND_SLOTS.c.key.in_(keys), SEND_SLOTS.c.sent_at <= now - self._longest))
            await session.execute(insert(SEND_SLOTS), [{"key": key, "sent_at": now} for key in keys])
            return 0.0

    async def _ask(self, session: AsyncSession, key: str, now: datetime) -> tuple[float, bool]:
        """How long until `key` may send again — for each limit the count-th newest send
        inside its window (a slot frees when it leaves) — and whether any of its slots has
        left every window: one statement."""
        sent_at = SEND_SLOTS.c.sent_at
        nth_newest = [
            select(sent_at).where(SEND_SLOTS.c.key == key, sent_at > now - timedelta(seconds=window))
            .order_by(sent_at.desc()).offset(count - 1).limit(1).scalar_subquery()
            for count, window in self._limits
        ]
        stale = exists().where(SEND_SLOTS.c.key == key, sent_at <= now - self._longest)
        *found, any_stale = (await session.execute(select(*nth_newest, stale))).one()
        wait = max([(as_utc(at) + timedelta(seconds=window) - now).total_seconds()
                    for at, (_, window) in zip(found, self._limits) if at is not None], default=0.0)
        return wait, bool(any_stale)
