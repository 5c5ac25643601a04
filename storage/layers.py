"""Members' layers in each scheme (RFM value, life cycle, super-user evolution…)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import LayerAssignment


async def layers_of(session: AsyncSession, member_id: int) -> dict[str, str]:
    """The member's current layer per scheme."""
    statement = select(LayerAssignment.scheme, LayerAssignment.layer).where(LayerAssignment.member_id == member_id)
    return {scheme: layer for scheme, layer in (await session.execute(statement)).all()}
