"""Moments posts and their publishers: what the WeCom sender records as a post moves
from a job to a post staff publish, and what the read-back finds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.outreach_models import MomentPost, MomentPublisher


async def posted_since(session: AsyncSession, since: datetime) -> Sequence[MomentPost]:
    """Posts staff were asked to publish since `since` (the read-back's work)."""
    statement = select(MomentPost).where(MomentPost.status == "posted", MomentPost.created_at >= since)
    return (await session.execute(statement.order_by(MomentPost.id))).scalars().all()  # type: ignore[arg-type]


async def publishers_of(session: AsyncSession, post_id: int) -> dict[str, MomentPublisher]:
    statement = select(MomentPublisher).where(MomentPublisher.post_id == post_id)
    return {p.userid: p for p in (await session.execute(statement)).scalars().all()}
