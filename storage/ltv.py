"""Lifetime value in the database: each member's order history summarised as of a date
(one aggregate statement), her scores written in bulk, the fits kept, one member read."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Integer, delete, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from storage.outcome_models import LtvFit, LtvScore
from storage.tables import LAYERS, LTV_FITS, LTV_SCORES, MEMBERS, ORDERS

CHUNK = 10_000
COPY_BLOCK = 50_000
SUMMARY_IDS = 250_000  # member ids per aggregate


@dataclass(frozen=True, slots=True)
class OrderSummary:
    """Per member with an order before the date: id, orders, whole days from her first
    order to her last and to the date, spend (cents) — numbers only, computed in SQL, so a
    million members cost a million small tuples, not five million datetimes."""

    member_ids: list[int]
    orders: list[int]
    first_to_last_days: list[int]
    first_to_date_days: list[int]
    cents: list[int]


def _days(dialect: str, later: Any, earlier: Any) -> Any:
    if dialect == "sqlite":
        return func.cast(func.julianday(later) - func.julianday(earlier), Integer)
    return func.floor(func.extract("epoch", later - earlier) / 86_400)


async def order_summary(session: AsyncSession, before: datetime) -> OrderSummary:
    """One aggregate per range of member ids (each read through the member index, with
    the database's parallel workers): a part at a time, never a million rows at once."""
    o = ORDERS.c
    dialect = session.bind.dialect.name
    low, high = (await session.execute(select(func.min(o.member_id), func.max(o.member_id)))).one()
    columns: list[list[int]] = [[], [], [], [], []]
    if low is None:
        return OrderSummary(*columns)
    for start in range(int(low), int(high) + 1, SUMMARY_IDS):
        per_member = (
            select(o.member_id.label("member_id"), func.count().label("n"), func.min(o.ordered_at).label("first"),
                   func.max(o.ordered_at).label("last"), func.sum(o.amount_cents).label("cents"))
            .where(o.ordered_at < before, o.member_id >= start, o.member_id < start + SUMMARY_IDS)
            .group_by(o.member_id).subquery()
        )
        m = per_member.c
        part = (await session.execute(select(
            m.member_id, m.n, _days(dialect, m.last, m.first),
            _days(dialect, literal(before, ORDERS.c.ordered_at.type), m.first), m.cents,
        ))).all()
        for column, values in zip(columns, zip(*part), strict=False):
            column.extend(map(int, values))
    return OrderSummary(*columns)


async def write_scores(session: AsyncSession, as_of: date, member_ids: Sequence[int], p_alive: Sequence[float],
                       orders: Sequence[float], cents: Sequence[float], now: datetime) -> None:
    """Replace every score with this fit's (members without an order keep none). On
    PostgreSQL one COPY (a million rows in seconds, where an INSERT per row takes a
    minute); elsewhere inserts in chunks."""
    rows = zip(member_ids, p_alive, orders, cents, strict=True)
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("TRUNCATE ltv_scores"))  # in the transaction; no dead rows to vacuum
        raw = await (await session.connection()).get_raw_connection()
        day, stamp = as_of.isoformat(), now.isoformat()
        async with raw.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
            async with cursor.copy("COPY ltv_scores (member_id, as_of, p_alive, orders_90d, clv_90d_cents, scored_at)"
                                   " FROM STDIN") as copy:
                lines: list[str] = []
                for m, p, n, c in rows:  # text rows, sent in blocks: one await per block, not per row
                    lines.append(f"{m}\t{day}\t{p!r}\t{n!r}\t{c!r}\t{stamp}\n")
                    if len(lines) == COPY_BLOCK:
                        await copy.write("".join(lines).encode())
                        lines = []
                if lines:
                    await copy.write("".join(lines).encode())
        return
    await session.execute(delete(LtvScore))
    batch: list[dict[str, Any]] = []
    for m, p, n, c in rows:
        batch.append({"member_id": m, "as_of": as_of, "p_alive": p, "orders_90d": n, "clv_90d_cents": c,
                      "scored_at": now})
        if len(batch) == CHUNK:
            await session.execute(LTV_SCORES.insert(), batch)
            batch = []
    if batch:
        await session.execute(LTV_SCORES.insert(), batch)


async def save_fit(session: AsyncSession, as_of: date, customers: int, params: dict[str, Any], now: datetime) -> None:
    await session.execute(LTV_FITS.insert().values(as_of=as_of, fitted_at=now, customers=customers,
                                                   params=json.dumps(params)))


async def under(session: AsyncSession, threshold: float) -> set[int]:
    """Members whose stored P(alive) is under `threshold`."""
    rows = await session.execute(select(LTV_SCORES.c.member_id).where(LTV_SCORES.c.p_alive < threshold))
    return set(rows.scalars().all())


async def top_layer_under(
    session: AsyncSession, scheme: str, layer: str, threshold: float
) -> list[tuple[int, str | None, int | None, float]]:
    """Members of `layer` whose P(alive) is under `threshold`: id, name, owner, P(alive)."""
    rows = await session.execute(
        select(MEMBERS.c.id, MEMBERS.c.name, MEMBERS.c.owner_staff_id, LTV_SCORES.c.p_alive)
        .join(LTV_SCORES, LTV_SCORES.c.member_id == MEMBERS.c.id)
        .join(LAYERS, (LAYERS.c.member_id == MEMBERS.c.id) & (LAYERS.c.scheme == scheme))
        .where(LAYERS.c.layer == layer, LTV_SCORES.c.p_alive < threshold)
    )
    return [(int(i), n, o, float(p)) for i, n, o, p in rows.all()]


async def latest_fit(session: AsyncSession) -> LtvFit | None:
    return (await session.execute(select(LtvFit).order_by(LtvFit.id.desc()).limit(1))).scalar_one_or_none()  # type: ignore[union-attr]


async def score_of(session: AsyncSession, member_id: int) -> LtvScore | None:
    return await session.get(LtvScore, member_id)
