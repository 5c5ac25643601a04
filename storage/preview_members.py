"""Members an operator can preview a message for: a short list to choose from, and what a
template may say of one (name, store, owner)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Member, Staff, Store


@dataclass(frozen=True, slots=True)
class PreviewMember:
    id: int
    name: str | None
    store: str | None  # the store's name
    owner: str | None  # the owner's name


def _query():  # noqa: ANN202 - a select
    return (select(Member.id, Member.name, Store.name, Staff.name)
            .outerjoin(Store, Store.id == Member.store_id)
            .outerjoin(Staff, Staff.id == Member.owner_staff_id))


async def preview_members(session: AsyncSession, limit: int = 30) -> list[PreviewMember]:
    """Current members with a name, newest first (an index walk, also over a million)."""
    rows = await session.execute(_query().where(Member.left_at.is_(None), Member.name.is_not(None))  # type: ignore[union-attr]
                                 .order_by(Member.id.desc()).limit(limit))  # type: ignore[union-attr]
    return [PreviewMember(*row) for row in rows.all()]


async def preview_member(session: AsyncSession, member_id: int) -> PreviewMember | None:
    row = (await session.execute(_query().where(Member.id == member_id))).first()
    return PreviewMember(*row) if row is not None else None
