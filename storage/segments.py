"""Segments: who matches a filter built on the members page, in SQL.

A `SegmentRule` is what the operator chose (layers per scheme, tags any/all/none,
stores, owners, last interaction, orders and spend, RFM scores, opt-out, joined date);
`resolve_segment` turns its names into ids once, and `segment_condition` is one WHERE
clause over the members table, so counting, paging, exporting and a calendar audience
all select the same members with one statement. Members who left are never included.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, cast, exists, false, func, not_, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import FromClause

from storage.models import Member, Staff, Store, Tag
from storage.segment_models import BulkAction, Segment
from storage.tables import INTERACTIONS, LAYERS, MEMBER_TAGS, MEMBERS, ORDERS

SCORES = ("r_score", "f_score", "m_score")
OPT_OUT = ("", "yes", "no")  # either, opted out, not opted out


@dataclass(frozen=True, slots=True)
class SegmentRule:
    """The builder's choices; empty fields filter nothing. Tags, stores and owners are
    named as operators see them (tag names, store codes, staff userids)."""

    layers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # scheme → any of these layers
    tags_any: tuple[str, ...] = ()
    tags_all: tuple[str, ...] = ()
    tags_none: tuple[str, ...] = ()
    stores: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    unowned: bool = False  # also (or only) members without an owner
    active_days: int | None = None  # interacted within the last N days
    silent_days: int | None = None  # no interaction for N days or more
    orders_min: int | None = None
    orders_max: int | None = None
    spend_min: int | None = None  # yuan, all orders
    spend_max: int | None = None
    scores: Mapping[str, int] = field(default_factory=dict)  # r_score/f_score/m_score → at least
    score_scheme: str = "value"  # the scheme whose recompute holds the RFM scores
    opted_out: str = ""
    joined_from: date | None = None
    joined_to: date | None = None

    @property
    def empty(self) -> bool:
        return self == SegmentRule(score_scheme=self.score_scheme)

    def to_json(self) -> str:
        raw = asdict(self)
        raw["layers"] = {k: list(v) for k, v in self.layers.items() if v}
        raw["scores"] = dict(self.scores)
        for key in ("joined_from", "joined_to"):
            raw[key] = raw[key].isoformat() if raw[key] else None
        return json.dumps({k: v for k, v in raw.items() if v not in (None, "", [], (), {}, False)},
                          ensure_ascii=False, sort_keys=True, default=list)

    @classmethod
    def from_json(cls, text: str) -> SegmentRule:
        raw: dict[str, Any] = json.loads(text or "{}")
        dates = {k: date.fromisoformat(raw[k]) if raw.get(k) else None for k in ("joined_from", "joined_to")}
        return cls(
            layers={str(k): tuple(v) for k, v in (raw.get("layers") or {}).items()},
            **{k: tuple(raw.get(k) or ()) for k in ("tags_any", "tags_all", "tags_none", "stores", "owners")},
            unowned=bool(raw.get("unowned")),
            **{k: raw.get(k) for k in ("active_days", "silent_days", "orders_min", "orders_max", "spend_min", "spend_max")},
            scores={k: int(v) for k, v in (raw.get("scores") or {}).items() if k in SCORES},
            score_scheme=str(raw.get("score_scheme") or "value"),
            opted_out=str(raw.get("opted_out") or ""),
            **dates,
        )


@dataclass(frozen=True, slots=True)
class ResolvedSegment:
    """A rule with its names turned into ids (an empty tuple: names no row, matches no one)."""

    rule: SegmentRule
    tags_any: tuple[int, ...] | None
    tags_all: tuple[tuple[int, ...], ...]  # per name, the ids of that name (any group)
    tags_none: tuple[int, ...]
    stores: tuple[int, ...] | None
    owners: tuple[int, ...] | None
    now: datetime
    dialect: str


async def resolve_segment(session: AsyncSession, rule: SegmentRule, now: datetime) -> ResolvedSegment:
    async def ids(model: Any, column: Any, names: Sequence[str]) -> tuple[int, ...]:
        found = await session.execute(select(model.id, column).where(column.in_(set(names))))
        return tuple(sorted(i for i, _ in found.all()))

    all_of: list[tuple[int, ...]] = []
    for name in dict.fromkeys(rule.tags_all):
        all_of.append(await ids(Tag, Tag.name, [name]))
    return ResolvedSegment(
        rule,
        await ids(Tag, Tag.name, rule.tags_any) if rule.tags_any else None,
        tuple(all_of),
        await ids(Tag, Tag.name, rule.tags_none) if rule.tags_none else (),
        await ids(Store, Store.code, rule.stores) if rule.stores else None,
        await ids(Staff, Staff.userid, rule.owners) if rule.owners else None,
        now,
        session.bind.dialect.name,
    )


def _has_tag(member: FromClause, tag_ids: Sequence[int]) -> ColumnElement[bool]:
    return exists().where(MEMBER_TAGS.c.member_id == member.c.id, MEMBER_TAGS.c.tag_id.in_(tag_ids))


def _score(dialect: str, name: str) -> Any:
    """An RFM score out of an assignment's metrics JSON (stored as text)."""
    if dialect == "postgresql":
        return cast(cast(LAYERS.c.metrics, JSONB)[name].astext, Integer)
    return func.json_extract(LAYERS.c.metrics, f"$.{name}")


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def segment_condition(member: FromClause, resolved: ResolvedSegment) -> ColumnElement[bool]:
    """Whether a row of `member` (the members table or an alias) is in the segment."""
    rule, now = resolved.rule, resolved.now
    where: list[ColumnElement[bool]] = [member.c.left_at.is_(None)]
    for scheme, layers in rule.layers.items():
        if layers:
            where.append(exists().where(LAYERS.c.member_id == member.c.id, LAYERS.c.scheme == scheme,
                                        LAYERS.c.layer.in_(layers)))
    if resolved.tags_any is not None:
        where.append(_has_tag(member, resolved.tags_any) if resolved.tags_any else false())
    where.extend(_has_tag(member, ids) if ids else false() for ids in resolved.tags_all)
    if resolved.tags_none:
        where.append(not_(_has_tag(member, resolved.tags_none)))
    if resolved.stores is not None:
        where.append(member.c.store_id.in_(resolved.stores) if resolved.stores else false())
    owned: list[ColumnElement[bool]] = []
    if resolved.owners is not None:
        owned.append(member.c.owner_staff_id.in_(resolved.owners) if resolved.owners else false())
    if rule.unowned:
        owned.append(member.c.owner_staff_id.is_(None))
    if owned:
        where.append(or_(*owned))
    spoke = INTERACTIONS.c.member_id == member.c.id
    if rule.active_days is not None:
        where.append(exists().where(spoke, INTERACTIONS.c.at >= now - timedelta(days=rule.active_days)))
    if rule.silent_days is not None:
        where.append(not_(exists().where(spoke, INTERACTIONS.c.at >= now - timedelta(days=rule.silent_days))))
    if rule.orders_min is not None or rule.orders_max is not None:
        count = select(func.count()).where(ORDERS.c.member_id == member.c.id).scalar_subquery()
        where.extend(c for c in (count >= rule.orders_min if rule.orders_min is not None else None,
                                 count <= rule.orders_max if rule.orders_max is not None else None) if c is not None)
    if rule.spend_min is not None or rule.spend_max is not None:
        spend = select(func.coalesce(func.sum(ORDERS.c.amount_cents), 0)).where(
            ORDERS.c.member_id == member.c.id).scalar_subquery()
        if rule.spend_min is not None:
            where.append(spend >= rule.spend_min * 100)
        if rule.spend_max is not None:
            where.append(spend <= rule.spend_max * 100)
    scores = {k: v for k, v in rule.scores.items() if k in SCORES}
    if scores:
        where.append(exists().where(LAYERS.c.member_id == member.c.id, LAYERS.c.scheme == rule.score_scheme,
                                    *(_score(resolved.dialect, k) >= v for k, v in scores.items())))
    if rule.opted_out == "yes":
        where.append(member.c.opted_out_at.is_not(None))
    elif rule.opted_out == "no":
        where.append(member.c.opted_out_at.is_(None))
    # Joined: her membership date, else when she first reached us.
    if rule.joined_from is not None:
        where.append(or_(member.c.member_since >= rule.joined_from,
                         and_(member.c.member_since.is_(None), member.c.created_at >= _start_of(rule.joined_from))))
    if rule.joined_to is not None:
        where.append(or_(member.c.member_since <= rule.joined_to,
                         and_(member.c.member_since.is_(None),
                              member.c.created_at < _start_of(rule.joined_to + timedelta(days=1)))))
    return and_(*where)


async def count_members(session: AsyncSession, resolved: ResolvedSegment, scope: ColumnElement[bool]) -> int:
    statement = select(func.count()).select_from(MEMBERS).where(scope, segment_condition(MEMBERS, resolved))
    return int((await session.execute(statement)).scalar_one())


async def member_ids(session: AsyncSession, resolved: ResolvedSegment, scope: ColumnElement[bool],
                     limit: int, after_id: int = 0) -> list[int]:
    """Member ids in the segment (and in `scope`), by id, after `after_id`."""
    statement = (select(MEMBERS.c.id).where(MEMBERS.c.id > after_id, scope, segment_condition(MEMBERS, resolved))
                 .order_by(MEMBERS.c.id).limit(limit))
    return list((await session.execute(statement)).scalars())


# -- saved segments and the log --------------------------------------------------------

async def saved_segments(session: AsyncSession) -> Sequence[Segment]:
    return (await session.execute(select(Segment).order_by(Segment.name))).scalars().all()  # type: ignore[arg-type]


async def segment_named(session: AsyncSession, name: str) -> Segment | None:
    return (await session.execute(select(Segment).where(Segment.name == name))).scalars().first()


async def save_segment(session: AsyncSession, name: str, rule: SegmentRule, login: str, now: datetime) -> Segment:
    """Create the segment, or replace the rule of the one with that name."""
    segment = await segment_named(session, name)
    if segment is None:
        segment = Segment(name=name, created_by=login, created_at=now)
    segment.rule, segment.updated_at = rule.to_json(), now
    session.add(segment)
    await session.flush()
    return segment


async def unknown_segment_names(session: AsyncSession, names: Sequence[str]) -> list[str]:
    if not names:
        return []
    known = set((await session.execute(select(Segment.name).where(Segment.name.in_(set(names))))).scalars())  # type: ignore[attr-defined]
    return [name for name in dict.fromkeys(names) if name not in known]


async def log_bulk_action(session: AsyncSession, login: str, action: str, detail: Mapping[str, Any],
                          members: int, now: datetime) -> int:
    row = BulkAction(login=login, action=action, detail=json.dumps(detail, ensure_ascii=False), members=members, at=now)
    session.add(row)
    await session.flush()
    assert row.id is not None
    return row.id


async def recent_bulk_actions(session: AsyncSession, limit: int = 10) -> Sequence[BulkAction]:
    statement = select(BulkAction).order_by(BulkAction.id.desc()).limit(limit)  # type: ignore[union-attr]
    return (await session.execute(statement)).scalars().all()


# -- export ----------------------------------------------------------------------------

@dataclass(slots=True)
class ExportRow:
    id: int
    name: str | None
    phone: str | None
    store: str | None
    owner: str | None
    joined: date | None
    opted_out: bool
    orders: int
    spend_cents: int
    last_interaction: datetime | None
    layers: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


async def export_rows(session: AsyncSession, ids: Sequence[int]) -> list[ExportRow]:
    """The exported facts of these members, by id: four statements over the batch."""
    if not ids:
        return []
    orders = (select(ORDERS.c.member_id, func.count().label("n"), func.sum(ORDERS.c.amount_cents).label("cents"))
              .where(ORDERS.c.member_id.in_(ids)).group_by(ORDERS.c.member_id).subquery())
    last = (select(INTERACTIONS.c.member_id, func.max(INTERACTIONS.c.at).label("at"))
            .where(INTERACTIONS.c.member_id.in_(ids)).group_by(INTERACTIONS.c.member_id).subquery())
    statement = (
        select(Member.id, Member.name, Member.phone, Store.name, Staff.name, Member.member_since,
               func.date(Member.created_at), Member.opted_out_at.is_not(None),  # type: ignore[union-attr]
               func.coalesce(orders.c.n, 0), func.coalesce(orders.c.cents, 0), last.c.at)
        .outerjoin(Store, Store.id == Member.store_id)  # type: ignore[arg-type]
        .outerjoin(Staff, Staff.id == Member.owner_staff_id)  # type: ignore[arg-type]
        .outerjoin(orders, orders.c.member_id == Member.id)
        .outerjoin(last, last.c.member_id == Member.id)
        .where(Member.id.in_(ids))  # type: ignore[union-attr]
        .order_by(Member.id)
    )
    rows: dict[int, ExportRow] = {}
    for mid, name, phone, store, owner, since, created, opted, n, cents, at in (await session.execute(statement)).all():
        joined = since or (date.fromisoformat(str(created)[:10]) if created else None)
        rows[mid] = ExportRow(mid, name, phone, store, owner, joined, bool(opted), int(n), int(cents), at)
    for mid, scheme, layer in (await session.execute(
            select(LAYERS.c.member_id, LAYERS.c.scheme, LAYERS.c.layer).where(LAYERS.c.member_id.in_(ids)))).all():
        rows[mid].layers[scheme] = layer
    tags = (select(MEMBER_TAGS.c.member_id, Tag.name).join(Tag, Tag.id == MEMBER_TAGS.c.tag_id)  # type: ignore[arg-type]
            .where(MEMBER_TAGS.c.member_id.in_(ids)).order_by(MEMBER_TAGS.c.member_id, Tag.name))
    for mid, name in (await session.execute(tags)).all():
        rows[mid].tags.append(name)
    return list(rows.values())
