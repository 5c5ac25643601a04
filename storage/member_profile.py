"""The queries behind the console's member pages: a search that stays cheap at a million
members (one LIMIT/OFFSET page, then facts for those rows only), and one member's record.

Who may read whom is the caller's business: it passes the WHERE clause (`scope`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.members import masked_phone, phone_tail
from storage.models import (
    Interaction,
    LayerAssignment,
    LayerMove,
    Member,
    MemberTag,
    Order,
    Staff,
    StaffTask,
    Store,
    Tag,
)

TAGS_SHOWN = 3  # tags per row of the results table; the rest are counted


@dataclass(frozen=True, slots=True)
class MemberFilter:
    name: str = ""  # contained in her name
    phone_tail: str = ""  # digits her phone ends with
    tag_ids: tuple[int, ...] | None = None  # she has one of these (None: any; empty: no such tag)


@dataclass(slots=True)
class MemberRow:
    """One search result. The phone is masked here, so the page never holds it whole."""

    id: int
    name: str | None
    phone: str | None
    store: str | None
    owner: str | None
    opted_out_at: datetime | None
    left_at: datetime | None
    layers: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    more_tags: int = 0
    last_interaction: datetime | None = None


@dataclass(frozen=True, slots=True)
class SearchPage:
    rows: list[MemberRow]
    has_next: bool


def _matching(scope: ColumnElement[bool], wanted: MemberFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [scope]
    if wanted.name:
        where.append(Member.name.contains(wanted.name, autoescape=True))  # type: ignore[union-attr]
    if wanted.phone_tail:
        # Only ever the last four digits, which the masked number shows anyway: a longer
        # tail would read the masked middle one digit per search.
        tail = phone_tail(wanted.phone_tail)
        where.append(Member.phone.endswith(tail, autoescape=True) if tail else false())  # type: ignore[union-attr]
    if wanted.tag_ids is not None:
        where.append(exists().where(
            MemberTag.member_id == Member.id, MemberTag.tag_id.in_(wanted.tag_ids)  # type: ignore[attr-defined]
        ))
    return where


async def search_page(
    session: AsyncSession, scope: ColumnElement[bool], wanted: MemberFilter, page: int, per_page: int
) -> SearchPage:
    """One page of the members in `scope` matching `wanted`, newest first (the primary
    key order: no sort over every match). One row more than a page says whether another
    follows, so no count over a million rows is needed."""
    statement = (
        select(Member.id, Member.name, Member.phone, Store.name, Staff.name, Member.opted_out_at, Member.left_at)
        .outerjoin(Store, Store.id == Member.store_id)  # type: ignore[arg-type]
        .outerjoin(Staff, Staff.id == Member.owner_staff_id)  # type: ignore[arg-type]
        .where(*_matching(scope, wanted))
        .order_by(Member.id.desc())  # type: ignore[union-attr]
        .limit(per_page + 1)
        .offset((page - 1) * per_page)
    )
    found = (await session.execute(statement)).all()
    rows = [MemberRow(id, name, masked_phone(phone), store, owner, opted, left)
            for id, name, phone, store, owner, opted, left in found[:per_page]]
    await _annotate(session, rows)
    return SearchPage(rows, len(found) > per_page)


async def _annotate(session: AsyncSession, rows: list[MemberRow]) -> None:
    """Layers, first tags and last interaction of the rows shown: three statements over
    at most a page of members, through the member indexes."""
    by_id = {row.id: row for row in rows}
    if not by_id:
        return
    ids = list(by_id)
    layers = select(LayerAssignment.member_id, LayerAssignment.scheme, LayerAssignment.layer).where(
        LayerAssignment.member_id.in_(ids)  # type: ignore[attr-defined]
    ).order_by(LayerAssignment.scheme)
    for member_id, scheme, layer in (await session.execute(layers)).all():
        by_id[member_id].layers[scheme] = layer
    tags = (
        select(MemberTag.member_id, Tag.name)
        .join(Tag, Tag.id == MemberTag.tag_id)  # type: ignore[arg-type]
        .where(MemberTag.member_id.in_(ids))  # type: ignore[attr-defined]
        .order_by(MemberTag.member_id, MemberTag.last_seen.desc(), Tag.name)  # type: ignore[attr-defined]
    )
    for member_id, name in (await session.execute(tags)).all():
        row = by_id[member_id]
        if len(row.tags) < TAGS_SHOWN:
            row.tags.append(name)
        else:
            row.more_tags += 1
    last = (
        select(Interaction.member_id, func.max(Interaction.at))
        .where(Interaction.member_id.in_(ids))  # type: ignore[attr-defined]
        .group_by(Interaction.member_id)  # type: ignore[arg-type]
    )
    for member_id, at in (await session.execute(last)).all():
        by_id[member_id].last_interaction = at


# ── Tags to choose from ────────────────────────────────────────────────────────────────


async def known_tags(session: AsyncSession, limit: int = 1000) -> Sequence[Tag]:
    """The brand's tags, by group and name (for the search select and the edit datalist)."""
    statement = select(Tag).order_by(Tag.group, Tag.name).limit(limit)  # type: ignore[arg-type]
    return (await session.execute(statement)).scalars().all()


async def tag_ids_for(session: AsyncSession, reference: str) -> tuple[int, ...]:
    """The tags a `tag=` parameter names: an id, or a name (in whichever group)."""
    reference = reference.strip()
    if reference.isdigit():
        tag = await session.get(Tag, int(reference))
        if tag is not None and tag.id is not None:
            return (tag.id,)
    statement = select(Tag.id).where(Tag.name == reference).order_by(Tag.id)  # type: ignore[arg-type]
    return tuple((await session.execute(statement)).scalars().all())


async def tags_named(session: AsyncSession, name: str) -> Sequence[Tag]:
    statement = select(Tag).where(Tag.name == name).order_by(Tag.id)  # type: ignore[arg-type]
    return (await session.execute(statement)).scalars().all()


async def claim_for_staff(session: AsyncSession, member_id: int, tag_id: int, source_ref: str) -> None:
    """A person confirmed a tag some rule or import gave her: it is now staff's, and no
    longer lapses with the rule's group."""
    await session.execute(
        update(MemberTag)
        .where(MemberTag.member_id == member_id, MemberTag.tag_id == tag_id)  # type: ignore[arg-type]
        .values(source="staff", source_ref=source_ref)
    )


# ── One member's record ────────────────────────────────────────────────────────────────


async def assignments_of(session: AsyncSession, member_id: int) -> Sequence[LayerAssignment]:
    statement = select(LayerAssignment).where(LayerAssignment.member_id == member_id).order_by(LayerAssignment.scheme)
    return (await session.execute(statement)).scalars().all()


async def moves_of(session: AsyncSession, member_id: int, limit: int = 100) -> Sequence[LayerMove]:
    statement = (
        select(LayerMove)
        .where(LayerMove.member_id == member_id)
        .order_by(LayerMove.moved_at.desc(), LayerMove.id.desc())  # type: ignore[attr-defined, union-attr]
        .limit(limit)
    )
    return (await session.execute(statement)).scalars().all()


async def timeline(
    session: AsyncSession, member_id: int, limit: int, before: int | None = None
) -> Sequence[Interaction]:
    """Her interactions newest first; `before` (an interaction id) pages on past it."""
    statement = select(Interaction).where(Interaction.member_id == member_id)
    if before is not None:
        anchor = await session.get(Interaction, before)
        if anchor is not None and anchor.member_id == member_id:
            statement = statement.where(or_(
                Interaction.at < anchor.at,
                and_(Interaction.at == anchor.at, Interaction.id < anchor.id),  # type: ignore[operator]
            ))
    statement = statement.order_by(
        Interaction.at.desc(), Interaction.id.desc()  # type: ignore[attr-defined, union-attr]
    ).limit(limit)
    return (await session.execute(statement)).scalars().all()


@dataclass(frozen=True, slots=True)
class OrderSummary:
    latest: Sequence[Order]
    count: int
    total_cents: int


async def orders_of(session: AsyncSession, member_id: int, limit: int) -> OrderSummary:
    latest = (
        select(Order).where(Order.member_id == member_id)
        .order_by(Order.ordered_at.desc(), Order.id.desc()).limit(limit)  # type: ignore[attr-defined, union-attr]
    )
    totals = select(func.count(), func.coalesce(func.sum(Order.amount_cents), 0)).where(Order.member_id == member_id)
    count, total = (await session.execute(totals)).one()
    return OrderSummary((await session.execute(latest)).scalars().all(), int(count), int(total))


async def open_tasks_about(session: AsyncSession, member_id: int, limit: int = 50) -> list[tuple[StaffTask, str | None]]:
    """Open tasks about her, soonest due first, with the assignee's name."""
    statement = (
        select(StaffTask, Staff.name)
        .outerjoin(Staff, Staff.id == StaffTask.staff_id)  # type: ignore[arg-type]
        .where(StaffTask.member_id == member_id, StaffTask.status == "open")
        .order_by(StaffTask.due_date, StaffTask.id)  # type: ignore[arg-type]
        .limit(limit)
    )
    return [(task, name) for task, name in (await session.execute(statement)).all()]


def metrics_of(assignment: LayerAssignment) -> dict[str, Any]:
    """The metric values stored with an assignment (JSON text), or none if unreadable."""
    try:
        found = json.loads(assignment.metrics or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}
