"""How far each configured tag reaches: members carrying it, and which rule gave it.

One GROUP BY over member_tags answers every rule at once; the console splits the groups
by rule. Members who have left are not counted, as in the layer pyramids.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import LayerRun, Member, MemberTag, Tag


@dataclass(frozen=True, slots=True)
class TagSourceCount:
    """Members carrying one tag, set by one source (a rule id when source is "rule")."""

    name: str
    group: str
    source: str
    source_ref: str | None
    members: int
    recent: int  # of those, hit (last_seen) since the `since` asked for


async def tag_source_counts(
    session: AsyncSession, tags: Iterable[tuple[str, str]], since: datetime
) -> list[TagSourceCount]:
    """For each (name, group) tag, current members carrying it per (source, source_ref)."""
    wanted = set(tags)
    if not wanted:
        return []
    statement = (
        select(
            Tag.name,
            Tag.group,
            MemberTag.source,
            MemberTag.source_ref,
            func.count(),
            func.coalesce(func.sum(case((MemberTag.last_seen >= since, 1), else_=0)), 0),
        )
        .select_from(MemberTag)
        .join(Tag, Tag.id == MemberTag.tag_id)  # type: ignore[arg-type]
        .join(Member, Member.id == MemberTag.member_id)  # type: ignore[arg-type]
        .where(
            Tag.name.in_(sorted({name for name, _ in wanted})),  # type: ignore[attr-defined]
            Member.left_at.is_(None),  # type: ignore[union-attr]
        )
        .group_by(Tag.name, Tag.group, MemberTag.source, MemberTag.source_ref)
    )
    return [
        TagSourceCount(name, group, source, ref, int(members), int(recent))  # PostgreSQL sums are Decimal
        for name, group, source, ref, members, recent in await session.execute(statement)
        if (name, group) in wanted
    ]


async def last_layer_runs(session: AsyncSession) -> dict[str, datetime]:
    """When each scheme's layers were last computed."""
    statement = select(LayerRun.scheme, LayerRun.ran_at)
    return {scheme: ran_at for scheme, ran_at in await session.execute(statement)}
