"""Interactions: every message in or out and every event, the raw stuff of engagement."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import CompoundSelect

from storage.dialects import insert_ignoring_conflicts
from storage.models import Interaction, Order
from storage.tables import INTERACTIONS

# Activity is what the member does: her messages (replies to us included), her events
# (adding us, reactions, link clicks) and her orders. Never what we send (message_out)
# nor what staff write (staff_out): a care message must not "wake up" its audience.
HER_KINDS = ("message_in", "event")
# An order arriving through the inbox is also recorded as this event; counted once, as the order.
ORDER_EVENT = "order_placed"


def activity_since(since: datetime, until: datetime | None = None) -> CompoundSelect:
    """One row (member_id, at) per act of hers at or after `since` (before `until` if given):
    her interactions and her orders, as a set-based select to count or join."""
    acts = select(Interaction.member_id.label("member_id"), Interaction.at.label("at")).where(  # type: ignore[attr-defined]
        Interaction.kind.in_(HER_KINDS),  # type: ignore[attr-defined]
        func.coalesce(Interaction.text, "") != ORDER_EVENT,
        Interaction.at >= since,
    )
    orders = select(Order.member_id.label("member_id"), Order.ordered_at.label("at")).where(  # type: ignore[attr-defined]
        Order.ordered_at >= since
    )
    if until is not None:
        acts = acts.where(Interaction.at < until)
        orders = orders.where(Order.ordered_at < until)
    return union_all(acts, orders)


async def record_interaction(
    session: AsyncSession,
    member_id: int,
    kind: str,
    platform: str,
    at: datetime,
    text: str | None,
    ref: str,
) -> None:
    """Record once per `ref`: replaying the same inbox or outbox row adds nothing."""
    statement = insert_ignoring_conflicts(INTERACTIONS, session.bind.dialect.name, ["ref"]).values(
        member_id=member_id, kind=kind, platform=platform, at=at, text=text, ref=ref
    )
    await session.execute(statement)


async def record_interactions(session: AsyncSession, rows: Sequence[dict[str, object]]) -> None:
    """`record_interaction` for many (keys: member_id, kind, platform, at, text, ref), in one
    statement."""
    if rows:
        await session.execute(insert_ignoring_conflicts(INTERACTIONS, session.bind.dialect.name, ["ref"]), list(rows))


async def count_interactions(session: AsyncSession, member_id: int) -> int:
    statement = select(func.count()).where(Interaction.member_id == member_id)
    return int((await session.execute(statement)).scalar_one())


async def recent_messages(
    session: AsyncSession, member_id: int, limit: int = 100
) -> Sequence[Interaction]:
    """The member's latest messages in and out, oldest first."""
    statement = (
        select(Interaction)
        .where(
            Interaction.member_id == member_id,
            Interaction.kind.in_(("message_in", "message_out")),  # type: ignore[attr-defined]
        )
        .order_by(Interaction.at.desc(), Interaction.id.desc())  # type: ignore[attr-defined, union-attr]
        .limit(limit)
    )
    rows = (await session.execute(statement)).scalars().all()
    return list(reversed(rows))


async def reply_window_state(
    session: AsyncSession, member_id: int, platform: str
) -> tuple[datetime | None, int]:
    """When the member last wrote on `platform`, and how many messages went to her since."""
    last_in = (
        await session.execute(
            select(func.max(Interaction.at)).where(
                Interaction.member_id == member_id,
                Interaction.platform == platform,
                Interaction.kind == "message_in",
            )
        )
    ).scalar_one_or_none()
    if last_in is None:
        return None, 0
    sent = (
        await session.execute(
            select(func.count()).where(
                Interaction.member_id == member_id,
                Interaction.platform == platform,
                Interaction.kind == "message_out",
                Interaction.at >= last_in,
            )
        )
    ).scalar_one()
    return last_in, int(sent)


async def messages_since(session: AsyncSession, member_id: int, since: datetime) -> int:
    """How many messages the member wrote since `since`."""
    statement = select(func.count()).where(
        Interaction.member_id == member_id, Interaction.kind == "message_in", Interaction.at >= since
    )
    return int((await session.execute(statement)).scalar_one())


async def last_interaction(session: AsyncSession, member_id: int) -> Interaction | None:
    statement = (
        select(Interaction)
        .where(Interaction.member_id == member_id)
        .order_by(Interaction.at.desc(), Interaction.id.desc())  # type: ignore[attr-defined, union-attr]
        .limit(1)
    )
    return (await session.execute(statement)).scalars().first()
