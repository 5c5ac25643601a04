"""Tags and why each member has them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.get_or_create import get_or_create
from storage.models import MemberTag, Tag


async def ensure_tag(session: AsyncSession, name: str, group: str = "") -> Tag:
    lookup = select(Tag).where(Tag.name == name, Tag.group == group)
    return await get_or_create(session, lookup, lambda: Tag(name=name, group=group))


async def apply_tag(
    session: AsyncSession,
    member_id: int,
    tag: Tag,
    source: str,
    source_ref: str | None,
    now: datetime,
) -> bool:
    """Give the member the tag, or count another hit. Returns True when the tag is new."""
    assert tag.id is not None
    existing = await session.get(MemberTag, (member_id, tag.id))
    if existing is None:
        session.add(
            MemberTag(
                member_id=member_id,
                tag_id=tag.id,
                source=source,
                source_ref=source_ref,
                first_seen=now,
                last_seen=now,
                hit_count=1,
            )
        )
        await session.flush()
        return True
    existing.last_seen = now
    existing.hit_count += 1
    session.add(existing)
    return False


@dataclass(frozen=True, slots=True)
class MemberTagView:
    name: str
    group: str
    source: str
    source_ref: str | None
    first_seen: datetime
    last_seen: datetime
    hit_count: int


async def tags_of(session: AsyncSession, member_id: int) -> Sequence[MemberTagView]:
    statement = (
        select(Tag.name, Tag.group, MemberTag)
        .join(MemberTag, MemberTag.tag_id == Tag.id)  # type: ignore[arg-type]
        .where(MemberTag.member_id == member_id)
        .order_by(MemberTag.first_seen, Tag.name)  # type: ignore[arg-type]
    )
    return [
        MemberTagView(
            name=name,
            group=group,
            source=mt.source,
            source_ref=mt.source_ref,
            first_seen=mt.first_seen,
            last_seen=mt.last_seen,
            hit_count=mt.hit_count,
        )
        for name, group, mt in (await session.execute(statement)).all()
    ]
