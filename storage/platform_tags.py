"""Our tags linked to a platform's own tags (WeCom corp tags) by `Tag.platform_tag_id`:
finding and linking them, following a rename or a deletion on the platform, and the
member tags that follow what staff set on the platform."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import MemberTag, OutboxEntry, Tag
from storage.tags import mark_members_changed, remove_member_tags

MARK_ROUTE = "mark_tag"


async def tag_named(session: AsyncSession, group: str, name: str) -> Tag | None:
    return (await session.execute(select(Tag).where(Tag.group == group, Tag.name == name))).scalars().first()


async def tag_linked_to(session: AsyncSession, platform_tag_id: str) -> Tag | None:
    """Our tag linked to that platform tag (the oldest, should several be)."""
    statement = select(Tag).where(Tag.platform_tag_id == platform_tag_id).order_by(Tag.id)  # type: ignore[arg-type]
    return (await session.execute(statement)).scalars().first()


async def linked_tags(session: AsyncSession) -> Sequence[Tag]:
    statement = select(Tag).where(Tag.platform_tag_id.is_not(None)).order_by(Tag.id)  # type: ignore[union-attr, arg-type]
    return (await session.execute(statement)).scalars().all()


async def link_tag(session: AsyncSession, tag_id: int, platform_tag_id: str | None) -> None:
    tag = await session.get(Tag, tag_id)
    if tag is not None and tag.platform_tag_id != platform_tag_id:
        tag.platform_tag_id = platform_tag_id
        session.add(tag)
        await session.flush()


async def rename_tag(session: AsyncSession, tag: Tag, name: str) -> bool:
    """Give `tag` a new name in its group; False (nothing changed) when another of our
    tags already has that group and name."""
    if tag.name == name:
        return True
    clash = await tag_named(session, tag.group, name)
    if clash is not None and clash.id != tag.id:
        return False
    tag.name = name
    session.add(tag)
    await session.flush()
    return True


async def unlink_tag(session: AsyncSession, tag: Tag, now: datetime) -> int:
    """The platform tag is gone: forget the link and take the tag from the members the
    platform gave it to (source "platform"); tags our rules or staff gave stay. Returns
    how many members lost it."""
    assert tag.id is not None
    tag.platform_tag_id = None
    session.add(tag)
    given = (MemberTag.tag_id == tag.id, MemberTag.source == "platform")
    await mark_members_changed(session, select(MemberTag.member_id).where(*given), now)
    result = await session.execute(delete(MemberTag).where(*given))  # type: ignore[arg-type]
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def linked_tags_of(session: AsyncSession, member_id: int) -> Sequence[Tag]:
    """The member's tags that are linked to a platform tag."""
    statement = (
        select(Tag)
        .join(MemberTag, MemberTag.tag_id == Tag.id)  # type: ignore[arg-type]
        .where(MemberTag.member_id == member_id, Tag.platform_tag_id.is_not(None))  # type: ignore[union-attr]
    )
    return (await session.execute(statement)).scalars().all()


async def remove_unlisted_linked_tags(
    session: AsyncSession, member_id: int, carried: Collection[int], now: datetime
) -> list[Tag]:
    """Take from the member every linked tag of ours not in `carried` (the ids of our tags
    for what the platform says she carries); returns the tags taken."""
    gone = [t for t in await linked_tags_of(session, member_id) if t.id not in carried]
    await remove_member_tags(session, member_id, [t.id for t in gone if t.id is not None], now)
    return gone


async def marks_in_flight(session: AsyncSession, member_id: int, platform: str, since: datetime) -> bool:
    """Whether a tag mark for the member is still waiting, or was sent since `since`:
    until it has landed, what the platform lists for her may lack what it adds."""
    statement = select(OutboxEntry.id).where(
        OutboxEntry.member_id == member_id,
        OutboxEntry.platform == platform,
        OutboxEntry.route == MARK_ROUTE,
        or_(
            OutboxEntry.status.in_(("pending", "sending")),  # type: ignore[attr-defined]
            OutboxEntry.sent_at >= since,  # type: ignore[operator]
        ),
    ).limit(1)
    return (await session.execute(statement)).first() is not None
