"""The console overview's questions that no other module asks: how delivery is doing, how
staff tasks get done per store, and which care tasks fall due today.

Everything is counted in the database and grouped there (by status, by reason, by
store); only the groups, and a bounded list of rows, come back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.engagement import NO_LAYER
from storage.models import LayerAssignment, Member, OutboxEntry, Staff, StaffTask, Store
from storage.tasks import done_in_time

# Reasons and errors are grouped on their first characters: errors that differ only in a
# request id further on fall into one group. Inlined so that PostgreSQL sees the same
# expression in SELECT and GROUP BY.
REASON_CHARS = 160
REASON_GROUPS = 10  # per status, the most frequent
# A sent row's `not_before` is when it last became due: at most this long before it went
# out unless delivery stood still for longer. It bounds the index range that is read.
SENT_LAG = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class ReasonCount:
    reason: str  # "" when the row carries none
    count: int
    first: datetime | None  # the earliest and latest not_before of the group
    last: datetime | None


@dataclass(frozen=True, slots=True)
class DeliveryHealth:
    pending_due: int  # their time has come: waiting for the delivery loop
    pending_later: int  # queued for later (today's care at its send time, a calendar entry)
    oldest_due: datetime | None  # since when the oldest due row waits
    sending: int
    retrying: list[ReasonCount]  # pending again after a transient error, by that error
    deferred: list[ReasonCount]  # quiet hours and the like, by reason, with the time they wait for
    held: list[ReasonCount]  # never to be sent, by reason (since `held_since`)
    failed: list[ReasonCount]  # given up, by last error (since `failed_since`)
    sent: int  # since `sent_since`


def _reason() -> object:
    return func.substr(OutboxEntry.last_error, literal_column("1"), literal_column(str(REASON_CHARS)))


async def delivery_health(
    session: AsyncSession, now: datetime, *, failed_since: datetime, held_since: datetime, sent_since: datetime
) -> DeliveryHealth:
    """The outbox by status, reasons grouped; each status read through the
    (status, not_before) index. A failed or held row's `not_before` stands for when it
    was tried: the last attempt came at or soon after it."""
    waiting = (
        select(
            OutboxEntry.status.label("status"),  # type: ignore[attr-defined]
            _reason().label("reason"),  # type: ignore[attr-defined]
            case((OutboxEntry.not_before <= now, 1), else_=0).label("due"),
            OutboxEntry.not_before.label("not_before"),  # type: ignore[attr-defined]
        )
        .where(or_(
            OutboxEntry.status.in_(("pending", "sending", "deferred")),  # type: ignore[attr-defined]
            and_(OutboxEntry.status == "failed", OutboxEntry.not_before >= failed_since),
            and_(OutboxEntry.status == "held", OutboxEntry.not_before >= held_since),
        ))
        .subquery()
    )
    grouped = select(
        waiting.c.status, waiting.c.reason, waiting.c.due, func.count(),
        func.min(waiting.c.not_before), func.max(waiting.c.not_before),
    ).group_by(waiting.c.status, waiting.c.reason, waiting.c.due)
    by_status: dict[str, list[ReasonCount]] = {}
    pending_due = pending_later = sending = 0
    oldest_due: datetime | None = None
    for status, reason, due, count, first, last in await session.execute(grouped):
        count = int(count)
        if status == "pending":
            if due:
                pending_due += count
                oldest_due = first if oldest_due is None or first < oldest_due else oldest_due
            else:
                pending_later += count
            if reason is None:
                continue  # a first try: nothing to explain
            status = "retrying"
        elif status == "sending":
            sending += count
            continue
        by_status.setdefault(status, []).append(ReasonCount(reason or "", count, first, last))
    sent = await session.execute(
        select(func.count()).where(
            OutboxEntry.status == "sent",
            OutboxEntry.not_before >= sent_since - SENT_LAG,
            OutboxEntry.sent_at >= sent_since,  # type: ignore[operator]
        )
    )
    return DeliveryHealth(
        pending_due, pending_later, oldest_due, sending,
        *(_merged(by_status.get(name, [])) for name in ("retrying", "deferred", "held", "failed")),
        sent=int(sent.scalar_one()),
    )


def _merged(groups: Sequence[ReasonCount]) -> list[ReasonCount]:
    """One entry per reason (a status's due and not-yet-due rows come apart), the most
    frequent first, at most REASON_GROUPS."""
    merged: dict[str, ReasonCount] = {}
    for g in groups:
        seen = merged.get(g.reason)
        if seen is None:
            merged[g.reason] = g
            continue
        firsts = [t for t in (seen.first, g.first) if t is not None]
        lasts = [t for t in (seen.last, g.last) if t is not None]
        merged[g.reason] = ReasonCount(g.reason, seen.count + g.count, min(firsts, default=None),
                                       max(lasts, default=None))
    return sorted(merged.values(), key=lambda g: (-g.count, g.reason))[:REASON_GROUPS]


@dataclass(frozen=True, slots=True)
class TaskTally:
    """Tasks of one store in one state: how many, and how many of those were done on time."""

    store_id: int | None  # None: the assignee has no store, or no one is assigned
    store: str | None
    store_code: str | None
    status: str  # open | done | skipped
    overdue: bool  # due before `today` (an open one is late)
    count: int
    on_time: int  # done by the end of their due day, local time


async def task_tallies(session: AsyncSession, first: date, today: date, zone: ZoneInfo) -> list[TaskTally]:
    """Tasks due in [first, today] per store of their assignee, by state. A task is on time
    when it was done before its due day ended in `zone` (as handlers.task_rates counts)."""
    tasks = (
        select(
            Staff.store_id.label("store_id"),  # type: ignore[union-attr]
            StaffTask.status.label("status"),  # type: ignore[attr-defined]
            case((StaffTask.due_date < today, 1), else_=0).label("overdue"),
            case((done_in_time(first, today, zone), 1), else_=0).label("on_time"),
        )
        .select_from(StaffTask)
        .outerjoin(Staff, Staff.id == StaffTask.staff_id)  # type: ignore[arg-type]
        .where(StaffTask.due_date >= first, StaffTask.due_date <= today)
        .subquery()
    )
    statement = (
        select(tasks.c.store_id, Store.name, Store.code, tasks.c.status, tasks.c.overdue, func.count(),
               func.sum(tasks.c.on_time))
        .select_from(tasks)
        .outerjoin(Store, Store.id == tasks.c.store_id)  # type: ignore[arg-type]
        .group_by(tasks.c.store_id, Store.name, Store.code, tasks.c.status, tasks.c.overdue)
    )
    return [
        TaskTally(store_id, name, code, status, bool(overdue), int(count), int(on_time or 0))
        for store_id, name, code, status, overdue, count, on_time in await session.execute(statement)
    ]


@dataclass(frozen=True, slots=True)
class DueTask:
    id: int
    kind: str
    title: str
    member_id: int | None
    member: str | None
    layer: str | None  # in the scheme asked about
    staff: str | None


async def open_tasks_due(
    session: AsyncSession, day: date, kinds: Sequence[str], scheme: str, limit: int
) -> tuple[dict[str, int], list[DueTask]]:
    """Open tasks of these kinds due on `day`: how many of each kind, and the first
    `limit` with their member, her layer in `scheme` and the assignee."""
    due = (StaffTask.status == "open", StaffTask.due_date == day, StaffTask.kind.in_(kinds))  # type: ignore[attr-defined]
    counts = await session.execute(select(StaffTask.kind, func.count()).where(*due).group_by(StaffTask.kind))
    rows = await session.execute(
        select(StaffTask.id, StaffTask.kind, StaffTask.title, StaffTask.member_id, Member.name,
               LayerAssignment.layer, Staff.name)
        .select_from(StaffTask)
        .outerjoin(Member, Member.id == StaffTask.member_id)  # type: ignore[arg-type]
        .outerjoin(LayerAssignment, and_(LayerAssignment.member_id == StaffTask.member_id,
                                         LayerAssignment.scheme == scheme))
        .outerjoin(Staff, Staff.id == StaffTask.staff_id)  # type: ignore[arg-type]
        .where(*due)
        .order_by(StaffTask.id)
        .limit(limit)
    )
    return {kind: int(n) for kind, n in counts}, [DueTask(*row) for row in rows]


async def store_layer_counts(session: AsyncSession, scheme: str, store_id: int) -> dict[str, int]:
    """One store's pyramid of `scheme`: its current members per layer (NO_LAYER: none yet)."""
    statement = (
        select(LayerAssignment.layer, func.count())
        .select_from(Member)
        .outerjoin(LayerAssignment, and_(LayerAssignment.member_id == Member.id,  # type: ignore[arg-type]
                                         LayerAssignment.scheme == scheme))
        .where(Member.store_id == store_id, Member.left_at.is_(None))  # type: ignore[union-attr]
        .group_by(LayerAssignment.layer)
    )
    return {layer or NO_LAYER: int(n) for layer, n in (await session.execute(statement)).all()}
