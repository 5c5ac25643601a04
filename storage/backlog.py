"""What is waiting in the database, read when Prometheus scrapes: inbox depth and the age
of its oldest pending row, outbox rows by status and route, and the connection pools.

Read at scrape time rather than counted as work happens, so every process reports the
database's truth (the same figures from each: dashboards take the max). Each query reads
an index on status; a result is kept a few seconds, so several scrapers cost one read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from storage.models import InboxEntry, OutboxEntry

WAITING = ("pending", "deferred", "sending")
GIVEN_UP = ("failed", "held", "expired")
RECENT = timedelta(hours=24)  # failed and held rows are counted over the last day
FRESH_FOR = 5.0  # seconds a reading is reused


@dataclass(frozen=True, slots=True)
class Backlog:
    read_at: datetime
    inbox_pending: int = 0
    inbox_oldest_age: float = 0.0  # seconds the oldest pending inbox row has waited
    inbox_failed: int = 0
    outbox_waiting: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (status, route) -> rows
    outbox_given_up: Mapping[tuple[str, str], int] = field(default_factory=dict)  # over the last day
    outbox_overdue: float = 0.0  # seconds the oldest due pending row is late


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=timezone.utc) if moment is not None and moment.tzinfo is None else moment


async def read_backlog(session: AsyncSession, now: datetime) -> Backlog:
    pending, oldest = (await session.execute(
        select(func.count(), func.min(InboxEntry.received_at)).where(InboxEntry.status == "pending")
    )).one()
    failed = (await session.execute(
        select(func.count()).where(InboxEntry.status == "failed")
    )).scalar_one()
    waiting = await session.execute(
        select(OutboxEntry.status, OutboxEntry.route, func.count())
        .where(OutboxEntry.status.in_(WAITING))  # type: ignore[attr-defined]
        .group_by(OutboxEntry.status, OutboxEntry.route)
    )
    given_up = await session.execute(
        select(OutboxEntry.status, OutboxEntry.route, func.count())
        .where(OutboxEntry.status.in_(GIVEN_UP), OutboxEntry.not_before >= now - RECENT)  # type: ignore[attr-defined]
        .group_by(OutboxEntry.status, OutboxEntry.route)
    )
    overdue_since = (await session.execute(
        select(func.min(OutboxEntry.not_before)).where(OutboxEntry.status == "pending", OutboxEntry.not_before <= now)
    )).scalar_one_or_none()
    oldest, overdue_since = _aware(oldest), _aware(overdue_since)
    return Backlog(
        read_at=now,
        inbox_pending=int(pending),
        inbox_oldest_age=max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
        inbox_failed=int(failed),
        outbox_waiting={(status, route): int(n) for status, route, n in waiting},
        outbox_given_up={(status, route): int(n) for status, route, n in given_up},
        outbox_overdue=max((now - overdue_since).total_seconds(), 0.0) if overdue_since else 0.0,
    )


class BacklogCollector(Collector):
    """Serves the last reading and the pools' use; `refresh` reads anew (async, so the
    scrape handler awaits it before the synchronous exposition runs)."""

    def __init__(self) -> None:
        self.backlog: Backlog | None = None
        self.pools: dict[str, AsyncEngine] = {}

    def watch_pool(self, name: str, engine: AsyncEngine) -> None:
        self.pools[name] = engine

    async def refresh(self, session: AsyncSession, now: datetime) -> None:
        if self.backlog is None or (now - self.backlog.read_at).total_seconds() >= FRESH_FOR:
            self.backlog = await read_backlog(session, now)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        yield from self._pool_gauges()
        backlog = self.backlog
        if backlog is None:
            return
        yield GaugeMetricFamily("siyu_inbox_pending", "Inbox rows waiting to be handled", value=backlog.inbox_pending)
        yield GaugeMetricFamily(
            "siyu_inbox_oldest_pending_age_seconds", "How long the oldest pending inbox row has waited",
            value=backlog.inbox_oldest_age,
        )
        yield GaugeMetricFamily("siyu_inbox_failed", "Inbox rows parked after failing", value=backlog.inbox_failed)
        yield _by_status_route(
            "siyu_outbox_rows", "Outbox rows waiting to be sent, by status and route", backlog.outbox_waiting
        )
        yield _by_status_route(
            "siyu_outbox_given_up_rows", "Outbox rows failed or held over the last 24 hours, by status and route",
            backlog.outbox_given_up,
        )
        yield GaugeMetricFamily(
            "siyu_outbox_oldest_due_age_seconds", "How late the oldest due pending outbox row is",
            value=backlog.outbox_overdue,
        )

    def _pool_gauges(self) -> Iterable[GaugeMetricFamily]:
        in_use = GaugeMetricFamily("siyu_db_pool_in_use", "Database connections checked out, by pool", labels=["pool"])
        size = GaugeMetricFamily("siyu_db_pool_size", "Database connections a pool keeps", labels=["pool"])
        for name, engine in self.pools.items():
            pool = engine.pool
            in_use.add_metric([name], float(getattr(pool, "checkedout", lambda: 0)()))
            size.add_metric([name], float(getattr(pool, "size", lambda: 0)()))
        yield in_use
        yield size


def _by_status_route(name: str, documentation: str, rows: Mapping[tuple[str, str], int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["status", "route"])
    for (status, route), count in sorted(rows.items()):
        family.add_metric([status, route], count)
    return family


BACKLOG = BacklogCollector()
REGISTRY.register(BACKLOG)
