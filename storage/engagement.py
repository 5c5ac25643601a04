"""Engagement per layer and local day: the numbers behind "is my top layer getting the
care, and is it engaging?".

Every counter is grouped by the member's *current* layer in a scheme (layer_assignments);
members without an assignment, and rows without a member, fall into NO_LAYER. A day is a
local day of the brand's time zone, turned into UTC bounds [start, end) before any query.

Definitions (what an operator reads in the console and in `siyu layers show`):
- members: assigned to the layer, created before the day ended and not gone before it
  began (a member who left during the day still counts that day, and in `left`);
- joined / left: created_at / left_at within the day;
- active: distinct members who did something themselves that day (any interaction but
  our messages to them, message_out and staff_out: a push received is not engagement);
- messages_in / messages_out / staff_replies: interactions of kind message_in,
  message_out and staff_out (a servicer's own words);
- bot_replies / care_sent: outbox rows of kind service / care sent that day;
- median_first_reply_seconds: for each message_in of the day, the seconds until the next
  message_out or staff_out to that member (whenever it came); the median per layer, None
  when no message of the day has been answered;
- tasks_due / tasks_done_on_time: staff tasks due that day / of those, done before the
  day ended;
- orders / revenue_cents: orders placed within the day.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql import Select

from storage.models import EngagementDay, Interaction, LayerAssignment, Member, Order, OutboxEntry, StaffTask
from storage.tables import ENGAGEMENT_DAYS

NO_LAYER = "(none)"
REPLY_KINDS = ("message_out", "staff_out")
# The counters of an EngagementDay, in the order people read them.
COUNTERS = (
    "members", "joined", "left", "active", "messages_in", "messages_out", "bot_replies", "staff_replies",
    "median_first_reply_seconds", "care_sent", "tasks_due", "tasks_done_on_time", "orders", "revenue_cents",
)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of the local day `day` in `zone` (23 or 25 hours on a
    daylight-saving change)."""
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def _by_layer(statement: Select[Any], member_id: Any, scheme: str) -> Select[Any]:
    """`statement`, its rows joined to their member's current layer in `scheme`."""
    return statement.outerjoin(
        LayerAssignment, and_(LayerAssignment.member_id == member_id, LayerAssignment.scheme == scheme)
    ).group_by(LayerAssignment.layer)


def _count_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


async def snapshot_day(session: AsyncSession, scheme: str, day: date, zone: ZoneInfo, now: datetime) -> int:
    """Compute `day`'s engagement per layer of `scheme` and store it, replacing what an
    earlier run stored for that day and scheme. Returns the rows written (one per layer
    with anything to count)."""
    start, end = day_bounds(day, zone)
    rows: dict[str, dict[str, Any]] = defaultdict(dict)

    def put(results: Any, *names: str) -> None:
        for layer, *values in results:
            row = rows[layer or NO_LAYER]
            for name, value in zip(names, values, strict=True):
                row[name] = value

    layer = LayerAssignment.layer
    member_id = Member.id
    in_day = and_(Member.created_at < end, or_(Member.left_at.is_(None), Member.left_at >= start))  # type: ignore[union-attr]
    put(await session.execute(_by_layer(
        select(
            layer,
            func.count(),
            _count_if(Member.created_at >= start),
            _count_if(and_(Member.left_at >= start, Member.left_at < end)),  # type: ignore[operator]
        ).select_from(Member).where(in_day),
        member_id, scheme,
    )), "members", "joined", "left")

    kind = Interaction.kind
    put(await session.execute(_by_layer(
        select(
            layer,
            func.count(func.distinct(case((kind.not_in(REPLY_KINDS), Interaction.member_id)))),  # type: ignore[attr-defined]
            _count_if(kind == "message_in"),
            _count_if(kind == "message_out"),
            _count_if(kind == "staff_out"),
        ).select_from(Interaction).where(Interaction.at >= start, Interaction.at < end),
        Interaction.member_id, scheme,
    )), "active", "messages_in", "messages_out", "staff_replies")

    put(await session.execute(_by_layer(
        select(layer, _count_if(OutboxEntry.kind == "service"), _count_if(OutboxEntry.kind == "care"))
        .select_from(OutboxEntry)
        .where(
            OutboxEntry.status == "sent",
            OutboxEntry.kind.in_(("service", "care")),  # type: ignore[attr-defined]
            OutboxEntry.sent_at >= start,  # type: ignore[operator]
            OutboxEntry.sent_at < end,  # type: ignore[operator]
        ),
        OutboxEntry.member_id, scheme,
    )), "bot_replies", "care_sent")

    put(await session.execute(_by_layer(
        select(
            layer,
            func.count(),
            _count_if(and_(StaffTask.status == "done", StaffTask.done_at < end)),  # type: ignore[operator]
        ).select_from(StaffTask).where(StaffTask.due_date == day),
        StaffTask.member_id, scheme,
    )), "tasks_due", "tasks_done_on_time")

    put(await session.execute(_by_layer(
        select(layer, func.count(), func.coalesce(func.sum(Order.amount_cents), 0))
        .select_from(Order)
        .where(Order.ordered_at >= start, Order.ordered_at < end),
        Order.member_id, scheme,
    )), "orders", "revenue_cents")

    for name, median in (await _median_first_replies(session, scheme, start, end)).items():
        rows[name]["median_first_reply_seconds"] = median

    await session.execute(delete(EngagementDay).where(EngagementDay.day == day, EngagementDay.scheme == scheme))
    if rows:
        await session.execute(insert(ENGAGEMENT_DAYS), [_row(day, scheme, name, values, now) for name, values in rows.items()])
    return len(rows)


async def _median_first_replies(
    session: AsyncSession, scheme: str, start: datetime, end: datetime
) -> dict[str, float]:
    """Per layer, the median seconds from a message of the day to the reply that followed.

    The database finds each message's reply (one index range per message, on
    interactions(member_id, at)); only the (layer, sent, replied) triples of the day come
    back, and the arithmetic is done here, where SQLite and PostgreSQL cannot disagree."""
    message, reply = aliased(Interaction), aliased(Interaction)
    replied_at = (
        select(func.min(reply.at))
        .where(reply.member_id == message.member_id, reply.kind.in_(REPLY_KINDS), reply.at >= message.at)  # type: ignore[attr-defined]
        .correlate(message)
        .scalar_subquery()
    )
    statement = (
        select(LayerAssignment.layer, message.at, replied_at)
        .select_from(message)
        .outerjoin(
            LayerAssignment, and_(LayerAssignment.member_id == message.member_id, LayerAssignment.scheme == scheme)
        )
        .where(message.kind == "message_in", message.at >= start, message.at < end)
    )
    gaps: dict[str, list[float]] = defaultdict(list)
    for layer, sent, replied in await session.execute(statement):
        if replied is not None:
            gaps[layer or NO_LAYER].append((replied - sent).total_seconds())
    return {layer: float(statistics.median(values)) for layer, values in gaps.items()}


def _row(day: date, scheme: str, layer: str, values: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    row: dict[str, Any] = {"day": day, "scheme": scheme, "layer": layer, "computed_at": now}
    for name in COUNTERS:
        value = values.get(name)
        if name == "median_first_reply_seconds":
            row[name] = value
        else:
            row[name] = int(value or 0)  # PostgreSQL sums come back as Decimal
    return row


async def engagement_series(session: AsyncSession, scheme: str, first_day: date, last_day: date) -> list[EngagementDay]:
    """The stored days first_day..last_day (inclusive) of `scheme`, by day then layer."""
    statement = (
        select(EngagementDay)
        .where(EngagementDay.scheme == scheme, EngagementDay.day >= first_day, EngagementDay.day <= last_day)
        .order_by(EngagementDay.day, EngagementDay.layer)  # type: ignore[arg-type]
    )
    return list((await session.execute(statement)).scalars().all())


async def layer_counts(session: AsyncSession, scheme: str) -> dict[str, int]:
    """The current pyramid of `scheme`: members per layer, those who have left not counted,
    those without a layer under NO_LAYER.

    Counted from the (scheme, layer) index, less the few who left, rather than by joining
    every member to her layer: at 1M members the join takes about a second a scheme."""
    per_layer = select(LayerAssignment.layer, func.count()).where(LayerAssignment.scheme == scheme)
    counts = Counter({layer: int(n) for layer, n in await session.execute(per_layer.group_by(LayerAssignment.layer))})
    gone = per_layer.where(LayerAssignment.member_id.in_(select(Member.id).where(Member.left_at.is_not(None))))  # type: ignore[attr-defined, union-attr]
    counts.subtract({layer: int(n) for layer, n in await session.execute(gone.group_by(LayerAssignment.layer))})
    members = (await session.execute(select(func.count()).select_from(Member))).scalar_one()
    left = (await session.execute(select(func.count()).where(Member.left_at.is_not(None)))).scalar_one()  # type: ignore[union-attr]
    unassigned = int(members) - int(left) - sum(counts.values())
    found = {layer: n for layer, n in counts.items() if n > 0}
    if unassigned > 0:
        found[NO_LAYER] = unassigned
    return found
