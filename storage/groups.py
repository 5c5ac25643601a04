"""Customer groups and who joined or left them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.get_or_create import get_or_create
from storage.models import CustomerGroup, GroupMembership


async def ensure_group(session: AsyncSession, platform: str, chat_id: str, now: datetime) -> CustomerGroup:
    lookup = select(CustomerGroup).where(CustomerGroup.platform == platform, CustomerGroup.chat_id == chat_id)
    return await get_or_create(session, lookup, lambda: CustomerGroup(platform=platform, chat_id=chat_id, created_at=now))


async def record_join(
    session: AsyncSession, group: CustomerGroup, user_id: str, member_id: int | None, at: datetime, scene: str | None
) -> None:
    """Open a stay for `user_id`, unless one is already open (a replayed event)."""
    assert group.id is not None
    open_stay = select(GroupMembership.id).where(
        GroupMembership.group_id == group.id, GroupMembership.user_id == user_id, GroupMembership.left_at.is_(None)  # type: ignore[union-attr]
    )
    if (await session.execute(open_stay)).first() is None:
        session.add(GroupMembership(group_id=group.id, user_id=user_id, member_id=member_id, joined_at=at, join_scene=scene))
        await session.flush()


async def record_leave(
    session: AsyncSession, group: CustomerGroup, user_id: str, at: datetime, scene: str | None
) -> None:
    await session.execute(
        update(GroupMembership)
        .where(
            GroupMembership.group_id == group.id,  # type: ignore[arg-type]
            GroupMembership.user_id == user_id,  # type: ignore[arg-type]
            GroupMembership.left_at.is_(None),  # type: ignore[union-attr]
        )
        .values(left_at=at, quit_scene=scene)
    )


async def open_stays(session: AsyncSession, group_id: int) -> list[str]:
    statement = select(GroupMembership.user_id).where(
        GroupMembership.group_id == group_id, GroupMembership.left_at.is_(None)  # type: ignore[union-attr]
    )
    return list((await session.execute(statement)).scalars().all())


async def group_names(session: AsyncSession, limit: int = 500) -> list[str]:
    """Names of the customer groups still open, for an operator choosing one by name."""
    found = await session.execute(select(CustomerGroup.name).where(
        CustomerGroup.name.is_not(None), CustomerGroup.dismissed_at.is_(None)  # type: ignore[union-attr]
    ).distinct().order_by(CustomerGroup.name).limit(limit))
    return [name for name in found.scalars() if name]
