"""Tags and why each member has them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialects import insert_ignoring_conflicts
from storage.get_or_create import get_or_create
from storage.models import Interaction, InterestScore, Member, MemberTag, Tag
from storage.tables import MEMBER_TAGS


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
    """Give the member the tag, or count another hit. Returns True when the tag is new.

    The hit is counted in the database (hit_count = hit_count + 1), never read, added to
    and written back, so hits counted at once elsewhere are not lost."""
    assert tag.id is not None
    counted = await session.execute(
        update(MemberTag)
        .where(MemberTag.member_id == member_id, MemberTag.tag_id == tag.id)  # type: ignore[arg-type]
        .values(hit_count=MemberTag.hit_count + 1, last_seen=now)
    )
    if counted.rowcount:  # type: ignore[attr-defined]
        return False
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


async def tags_in_group(session: AsyncSession, member_id: int, group: str) -> Sequence[Tag]:
    statement = (
        select(Tag)
        .join(MemberTag, MemberTag.tag_id == Tag.id)  # type: ignore[arg-type]
        .where(MemberTag.member_id == member_id, Tag.group == group)
    )
    return (await session.execute(statement)).scalars().all()


async def mark_members_changed(session: AsyncSession, which: Any, now: datetime) -> None:
    """Note an edit on members (`which`: a member id or a SELECT of ids), so the next
    incremental layer run takes them again: a removed tag leaves no row behind whose
    time that run could see."""
    chosen = Member.id.in_(which) if isinstance(which, Select) else Member.id == which  # type: ignore[union-attr]
    await session.execute(update(Member).where(chosen).values(updated_at=now))


async def remove_member_tags(session: AsyncSession, member_id: int, tag_ids: Sequence[int], now: datetime) -> int:
    """Take the tags from the member; returns how many she had."""
    if not tag_ids:
        return 0
    result = await session.execute(
        delete(MemberTag).where(MemberTag.member_id == member_id, MemberTag.tag_id.in_(tag_ids))  # type: ignore[attr-defined]
    )
    removed = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if removed:
        await mark_members_changed(session, member_id, now)
    return removed


async def remove_rule_tags(session: AsyncSession, member_id: int, rule_ids: Sequence[str]) -> set[str]:
    """Take from the member the tags these rules gave her; returns the rules that had."""
    result = await session.execute(
        delete(MemberTag)
        .where(MemberTag.member_id == member_id, MemberTag.source == "rule",
               MemberTag.source_ref.in_(rule_ids))  # type: ignore[union-attr]
        .returning(MemberTag.source_ref)
    )
    return {ref for ref in result.scalars() if ref}


async def add_interest(session: AsyncSession, member_id: int, topic: str, weight: int, now: datetime) -> None:
    """Add `weight` to the member's interest in `topic`, in the database (score = score + w)."""
    added = await session.execute(
        update(InterestScore)
        .where(InterestScore.member_id == member_id, InterestScore.topic == topic)  # type: ignore[arg-type]
        .values(score=InterestScore.score + weight, updated_at=now)
    )
    if added.rowcount:  # type: ignore[attr-defined]
        return
    session.add(InterestScore(member_id=member_id, topic=topic, score=weight, updated_at=now))
    await session.flush()


async def interests_of(session: AsyncSession, member_id: int) -> dict[str, int]:
    statement = select(InterestScore.topic, InterestScore.score).where(InterestScore.member_id == member_id)
    return {topic: score for topic, score in (await session.execute(statement)).all()}


async def expire_rule_tags(session: AsyncSession, group: str, last_hit_before: datetime, now: datetime) -> int:
    """Remove the group's rule-given tags not hit since `last_hit_before`; returns how many.
    Tags staff or a platform set stay: only a rule's own judgement lapses."""
    lapsed = (
        MemberTag.tag_id.in_(select(Tag.id).where(Tag.group == group)),  # type: ignore[attr-defined]
        MemberTag.source == "rule",
        MemberTag.last_seen < last_hit_before,
    )
    await mark_members_changed(session, select(MemberTag.member_id).where(*lapsed), now)
    result = await session.execute(delete(MemberTag).where(*lapsed))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def tag_silent_members(
    session: AsyncSession, tag: Tag, rule_id: str, silent_since: datetime, now: datetime
) -> int:
    """Give `tag` to every current member with no interaction since `silent_since` (and who
    joined before it), in one statement; returns how many were newly tagged."""
    assert tag.id is not None
    last_seen = (
        select(Interaction.member_id, func.max(Interaction.at).label("last_at"))
        .where(Interaction.kind.not_in(("message_out", "staff_out")))  # what she did, not what we sent
        .group_by(Interaction.member_id)  # type: ignore[arg-type]
        .subquery()
    )
    silent = (
        select(
            Member.id, literal(tag.id), literal("rule"), literal(rule_id), literal(now), literal(now), literal(1)
        )
        .outerjoin(last_seen, last_seen.c.member_id == Member.id)
        .where(
            Member.left_at.is_(None),  # type: ignore[union-attr]
            func.coalesce(last_seen.c.last_at, Member.created_at) < silent_since,
        )
    )
    columns = ["member_id", "tag_id", "source", "source_ref", "first_seen", "last_seen", "hit_count"]
    insert = insert_ignoring_conflicts(MEMBER_TAGS, session.bind.dialect.name, ["member_id", "tag_id"])
    # Counted from RETURNING: PostgreSQL reports no row count for an INSERT … SELECT that
    # skipped every row.
    result = await session.execute(insert.from_select(columns, silent).returning(MEMBER_TAGS.c.member_id))
    return len(result.all())


async def tags_named_in(session: AsyncSession, names: Sequence[str]) -> list[tuple[str, str]]:
    """(group, name) of every tag with one of these names, in whichever group."""
    if not names:
        return []
    statement = select(Tag.group, Tag.name).where(Tag.name.in_(names)).order_by(Tag.group, Tag.name)  # type: ignore[attr-defined]
    return [(group, name) for group, name in (await session.execute(statement)).all()]
