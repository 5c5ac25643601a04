"""Orders: what members bought, the monetary half of RFM."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialects import insert_ignoring_conflicts
from storage.tables import ORDERS

# One order's amount, at most: ¥100,000,000 — far above any till, far below what the
# BIGINT column holds, so an order that passed the door is never refused by the database.
MAX_AMOUNT_CENTS = 100_000_000 * 100


async def record_order(
    session: AsyncSession, order_no: str, member_id: int, amount_cents: int, ordered_at: datetime,
    store_id: int | None = None,
) -> bool:
    """Store the order once per order number; returns True when it is new."""
    statement = insert_ignoring_conflicts(ORDERS, session.bind.dialect.name, ["order_no"]).values(
        order_no=order_no, member_id=member_id, amount_cents=amount_cents, ordered_at=ordered_at, store_id=store_id
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]
