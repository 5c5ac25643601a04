"""Who a content-calendar entry's audience is, in SQL.

An audience is written by the operator (layers, tags, stores, life-cycle stages) and
selected here with one statement, never by looping over members: AND across keys, OR
within one key, members who left never included.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, false, func, literal, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import FromClause

from storage.models import (
    InboxEntry,
    utcnow,
    Store,
    Tag,
)
from storage.segments import ResolvedSegment, SegmentRule, resolve_segment, segment_condition, segment_named
from storage.tables import GROUPS, IDENTITIES, LAYERS, MEMBER_TAGS, MEMBERS, STAFF, STAYS, STORES

LIFECYCLE = "lifecycle"  # the scheme `lifecycle = [...]` names layers of
AUDIENCE_LISTS = ("layers", "lifecycle", "tags", "exclude_tags", "stores")


@dataclass(frozen=True, slots=True)
class Audience:
    """Who an entry is for. Empty (no key at all) is an error the loader reports."""

    scheme: str = "value"
    layers: tuple[str, ...] = ()
    lifecycle: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # any of them
    exclude_tags: tuple[str, ...] = ()  # none of them
    stores: tuple[str, ...] = ()  # store codes
    everyone: bool = False
    segment: str = ""  # a segment saved on the members page, by name

    @property
    def empty(self) -> bool:
        return not (self.everyone or self.layers or self.lifecycle or self.tags or self.stores or self.segment)

    def as_dict(self) -> dict[str, Any]:
        """The canonical form, as written to the database and exported: only what is set."""
        found: dict[str, Any] = {"everyone": True} if self.everyone else {}
        if self.layers:
            found["scheme"] = self.scheme
        found.update({key: list(getattr(self, key)) for key in AUDIENCE_LISTS if getattr(self, key)})
        if self.segment:
            found["segment"] = self.segment
        return found

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Audience:
        raw = json.loads(text or "{}")
        return cls(
            scheme=str(raw.get("scheme") or "value"),
            everyone=bool(raw.get("everyone", False)),
            segment=str(raw.get("segment") or ""),
            **{key: tuple(raw.get(key) or ()) for key in AUDIENCE_LISTS},
        )


@dataclass(frozen=True, slots=True)
class Resolved:
    """An audience with its tag names and store codes turned into ids (None: names no row)."""

    audience: Audience
    tag_ids: tuple[int, ...] | None
    exclude_tag_ids: tuple[int, ...]
    store_ids: tuple[int, ...] | None
    # The named segment's rule, resolved; None without one. A name no segment has: nobody.
    segment: ResolvedSegment | None = None
    segment_missing: bool = False


# -- audiences -------------------------------------------------------------------------

async def resolve(session: AsyncSession, audience: Audience) -> Resolved:
    async def tag_ids(names: Sequence[str]) -> tuple[int, ...]:
        if not names:
            return ()
        found = await session.execute(select(Tag.id).where(Tag.name.in_(set(names))))  # type: ignore[attr-defined]
        return tuple(sorted(found.scalars()))

    store_ids: tuple[int, ...] | None = None
    if audience.stores:
        found = await session.execute(select(Store.id).where(Store.code.in_(set(audience.stores))))  # type: ignore[attr-defined]
        store_ids = tuple(sorted(found.scalars()))
    segment: ResolvedSegment | None = None
    if audience.segment:
        saved = await segment_named(session, audience.segment)
        if saved is not None:
            segment = await resolve_segment(session, SegmentRule.from_json(saved.rule), utcnow())
    return Resolved(audience, await tag_ids(audience.tags) if audience.tags else None,
                    await tag_ids(audience.exclude_tags), store_ids, segment, bool(audience.segment) and segment is None)


LayerTest = Callable[[str, Sequence[str]], ColumnElement[bool]]


def _layer_exists(member: FromClause) -> LayerTest:
    def layer_in(scheme: str, layers: Sequence[str]) -> ColumnElement[bool]:
        return exists().where(LAYERS.c.member_id == member.c.id, LAYERS.c.scheme == scheme, LAYERS.c.layer.in_(layers))
    return layer_in


def audience_condition(member: FromClause, resolved: Resolved, layer_in: LayerTest | None = None) -> ColumnElement[bool]:
    """Whether a row of `member` (the members table or an alias) is in the audience.
    `layer_in(scheme, layers)` may test a joined layer column; by default it is an
    EXISTS on layer_assignments."""
    layer_in = layer_in or _layer_exists(member)
    audience = resolved.audience
    conditions: list[ColumnElement[bool]] = [member.c.left_at.is_(None)]
    if audience.layers:
        conditions.append(layer_in(audience.scheme, audience.layers))
    if audience.lifecycle:
        conditions.append(layer_in(LIFECYCLE, audience.lifecycle))
    if resolved.tag_ids is not None:
        conditions.append(_has_tag(member, resolved.tag_ids) if resolved.tag_ids else false())
    if resolved.exclude_tag_ids:
        conditions.append(~_has_tag(member, resolved.exclude_tag_ids))
    if resolved.store_ids is not None:
        conditions.append(member.c.store_id.in_(resolved.store_ids) if resolved.store_ids else false())
    if resolved.segment is not None:
        conditions.append(segment_condition(member, resolved.segment))
    elif resolved.segment_missing:
        conditions.append(false())
    return and_(*conditions)


def _has_tag(member: FromClause, tag_ids: Sequence[int]) -> ColumnElement[bool]:
    return exists().where(MEMBER_TAGS.c.member_id == member.c.id, MEMBER_TAGS.c.tag_id.in_(tag_ids))


def _identity(member: FromClause, platform: str) -> Any:
    """The member's id on `platform` (the smallest, should she have several): a probe per
    member, so a page of the audience costs a page of probes."""
    return (
        select(func.min(IDENTITIES.c.external_id))
        .where(IDENTITIES.c.member_id == member.c.id, IDENTITIES.c.platform == platform)
        .scalar_subquery()
    )


@dataclass(frozen=True, slots=True)
class Recipient:
    member_id: int
    name: str | None
    store: str | None
    external_id: str | None  # None: she has no id on the platform
    opted_out: bool


async def recipients(
    session: AsyncSession, resolved: Resolved, platform: str, after_id: int, limit: int
) -> list[Recipient]:
    """One page of the audience (by member id, after `after_id`) with each member's id on `platform`."""
    statement = (
        select(MEMBERS.c.id, MEMBERS.c.name, STORES.c.name, _identity(MEMBERS, platform),
               MEMBERS.c.opted_out_at.is_not(None))
        .select_from(MEMBERS.outerjoin(STORES, STORES.c.id == MEMBERS.c.store_id))
        .where(MEMBERS.c.id > after_id, audience_condition(MEMBERS, resolved))
        .order_by(MEMBERS.c.id)
        .limit(limit)
    )
    return [Recipient(*row) for row in (await session.execute(statement)).all()]


@dataclass(frozen=True, slots=True)
class Owner:
    staff_id: int
    userid: str
    store: str | None
    active: bool
    members: int  # audience members she owns (not opted out)


async def owners(session: AsyncSession, resolved: Resolved) -> tuple[list[Owner], int, int]:
    """The staff who own audience members, how many each; and the audience members who
    opted out, and those without an owner."""
    opted = MEMBERS.c.opted_out_at.is_not(None)
    # "+ 0": one pass over the table beats walking the owner index (a random read per member).
    owner = (MEMBERS.c.owner_staff_id + 0).label("owner")
    statement = select(owner, opted, func.count()).where(audience_condition(MEMBERS, resolved)).group_by(owner, opted)
    counts: dict[int, int] = {}
    opted_out = unowned = 0
    for staff_id, is_opted, count in (await session.execute(statement)).all():
        if is_opted:
            opted_out += count
        elif staff_id is None:
            unowned += count
        else:
            counts[staff_id] = count
    if not counts:
        return [], opted_out, unowned
    staff = await session.execute(
        select(STAFF.c.id, STAFF.c.userid, STORES.c.name, STAFF.c.active)
        .select_from(STAFF.outerjoin(STORES, STORES.c.id == STAFF.c.store_id))
        .where(STAFF.c.id.in_(counts)).order_by(STAFF.c.userid)
    )
    return [Owner(i, u, s, bool(a), counts[i]) for i, u, s, a in staff.all()], opted_out, unowned


async def owned_external_ids(session: AsyncSession, resolved: Resolved, platform: str) -> dict[int, list[str]]:
    """Per owning staff member, the ids on `platform` of her audience members who did not
    opt out (one pass over the members)."""
    statement = (
        select(MEMBERS.c.owner_staff_id, _identity(MEMBERS, platform))
        .where(MEMBERS.c.owner_staff_id.is_not(None), MEMBERS.c.opted_out_at.is_(None),
               audience_condition(MEMBERS, resolved))
        .order_by(MEMBERS.c.id)
    )
    found: dict[int, list[str]] = {}
    for staff_id, external_id in (await session.execute(statement)).all():
        if external_id is not None:
            found.setdefault(staff_id, []).append(external_id)
    return found


@dataclass(frozen=True, slots=True)
class GroupOwner:
    userid: str
    staff_id: int | None
    store: str | None
    chat_ids: tuple[str, ...]
    members: int  # audience members in these groups


async def group_owners(session: AsyncSession, resolved: Resolved, platform: str) -> list[GroupOwner]:
    """Open groups on `platform` holding audience members (every open group when the
    audience is everyone), by owner."""
    stays = (
        select(STAYS.c.group_id, func.count(func.distinct(STAYS.c.member_id)).label("members"))
        .select_from(STAYS.join(MEMBERS, MEMBERS.c.id == STAYS.c.member_id))
        .where(STAYS.c.left_at.is_(None), audience_condition(MEMBERS, resolved))
        .group_by(STAYS.c.group_id)
        .subquery()
    )
    groups = (
        select(GROUPS.c.owner, GROUPS.c.chat_id, func.coalesce(stays.c.members, 0))
        .select_from(GROUPS.outerjoin(stays, stays.c.group_id == GROUPS.c.id))
        .where(GROUPS.c.platform == platform, GROUPS.c.dismissed_at.is_(None), GROUPS.c.owner.is_not(None),
               true() if resolved.audience.everyone else stays.c.members > 0)
        .order_by(GROUPS.c.owner, GROUPS.c.chat_id)
    )
    by_owner: dict[str, tuple[list[str], int]] = {}
    for owner, chat_id, members in (await session.execute(groups)).all():
        chats, count = by_owner.get(owner, ([], 0))
        by_owner[owner] = ([*chats, chat_id], count + members)
    if not by_owner:
        return []
    staff = await session.execute(
        select(STAFF.c.userid, STAFF.c.id, STORES.c.name)
        .select_from(STAFF.outerjoin(STORES, STORES.c.id == STAFF.c.store_id))
        .where(STAFF.c.userid.in_(by_owner))
    )
    known = {userid: (staff_id, store) for userid, staff_id, store in staff.all()}
    return [GroupOwner(userid, *known.get(userid, (None, None)), tuple(chats), count)
            for userid, (chats, count) in by_owner.items()]


async def kf_conversations(session: AsyncSession, platform: str, since: datetime) -> dict[str, str]:
    """Each customer's latest Customer Service conversation ("kf:<open_kfid>") among the
    messages received since `since`, read from the inbox in one pass."""
    statement = (
        select(InboxEntry.sender, InboxEntry.payload)
        .where(InboxEntry.platform == platform, InboxEntry.received_at >= since,
               InboxEntry.payload.like('%"conversation":"kf:%'))  # type: ignore[union-attr]
        .order_by(InboxEntry.id)  # type: ignore[arg-type]
    )
    found: dict[str, str] = {}
    for sender, payload in (await session.execute(statement)).all():
        conversation = json.loads(payload).get("conversation")
        if isinstance(conversation, str) and conversation.startswith("kf:"):
            found[sender] = conversation  # later rows win
    return found


# -- the preview's member classes ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class MemberClass:
    """Members alike in everything the preview asks: the same layer in the cap scheme,
    opt-out, ids and owner, and the same set of entries whose audience holds them."""

    layer: str  # "" without a layer in the cap scheme
    opted_out: bool
    flags: frozenset[str]  # "wecom", "oa", "owner", "group"
    entries: frozenset[str]
    members: int


async def member_classes(
    session: AsyncSession, audiences: Mapping[str, Resolved], cap_scheme: str, flags: Sequence[str]
) -> list[MemberClass]:
    """Every audience member counted into classes by one GROUP BY over the members.

    Grouped by the atoms audiences are made of, each computed once per member: her layer
    in each scheme used (joined once), each distinct tag set and store set, opt-out and
    the flags asked for, packed into one integer (one sort key, not a dozen). Which
    entries a class belongs to is then decided per class, not per member; members in no
    audience are left out."""
    schemes = sorted({cap_scheme} | {LIFECYCLE for r in audiences.values() if r.audience.lifecycle}
                     | {r.audience.scheme for r in audiences.values() if r.audience.layers})
    joined: FromClause = MEMBERS
    digits: list[tuple[Any, int]] = []  # (expression 0..size-1, size)
    names: dict[str, list[str]] = {}
    for n, scheme in enumerate(schemes):
        names[scheme] = list((await session.execute(
            select(LAYERS.c.layer).where(LAYERS.c.scheme == scheme).distinct().order_by(LAYERS.c.layer))).scalars())
        alias = LAYERS.alias(f"la{n}")
        joined = joined.outerjoin(alias, and_(alias.c.member_id == MEMBERS.c.id, alias.c.scheme == scheme))
        code = case(*((alias.c.layer == name, i + 1) for i, name in enumerate(names[scheme])), else_=0) \
            if names[scheme] else literal(0)
        digits.append((code, len(names[scheme]) + 1))
    tag_sets = sorted({ids for r in audiences.values() for ids in (r.tag_ids, r.exclude_tag_ids) if ids})
    store_sets = sorted({r.store_ids for r in audiences.values() if r.store_ids})
    segment_sets = {r.audience.segment: r.segment for r in audiences.values() if r.segment is not None}
    segment_names = sorted(segment_sets)
    # Uncorrelated IN: each set is built once (SQLite: an in-memory index; PostgreSQL: a
    # hashed subplan) rather than an index probe and a row read per member.
    flag_tests = {
        "wecom": MEMBERS.c.id.in_(select(IDENTITIES.c.member_id).where(IDENTITIES.c.platform == "wecom")),
        "oa": MEMBERS.c.id.in_(select(IDENTITIES.c.member_id).where(IDENTITIES.c.platform == "oa")),
        "owner": MEMBERS.c.owner_staff_id.is_not(None),
        "group": MEMBERS.c.id.in_(select(STAYS.c.member_id).where(STAYS.c.left_at.is_(None), STAYS.c.member_id.is_not(None))),
    }
    wanted = [flag for flag in flag_tests if flag in flags]
    bits = [*(_has_tag(MEMBERS, ids) for ids in tag_sets), *(MEMBERS.c.store_id.in_(ids) for ids in store_sets),
            *(segment_condition(MEMBERS, segment_sets[name]) for name in segment_names),
            MEMBERS.c.opted_out_at.is_not(None), *(flag_tests[flag] for flag in wanted)]
    digits += [(case((test, 1), else_=0), 2) for test in bits]
    key, weight = literal(0), 1
    for code, size in digits:
        key, weight = key + code * weight, weight * size
    key = key.label("class_key")
    statement = select(key, func.count()).select_from(joined).where(MEMBERS.c.left_at.is_(None)).group_by(key)
    found = []
    for packed, count in (await session.execute(statement)).all():
        values = []
        for _, size in digits:
            packed, value = divmod(int(packed), size)
            values.append(value)
        layers = {scheme: names[scheme][v - 1] if v else "" for scheme, v in zip(schemes, values, strict=False)}
        atoms = values[len(schemes):]
        tags = {ids for ids, v in zip(tag_sets, atoms, strict=False) if v}
        stores = {ids for ids, v in zip(store_sets, atoms[len(tag_sets):], strict=False) if v}
        segments = {name for name, v in zip(segment_names, atoms[len(tag_sets) + len(store_sets):], strict=False) if v}
        rest = atoms[len(tag_sets) + len(store_sets) + len(segment_names):]
        entries = frozenset(name for name, r in audiences.items() if _holds(r, layers, tags, stores, segments))
        if entries:
            found.append(MemberClass(layers[cap_scheme], bool(rest[0]),
                                     frozenset(f for f, v in zip(wanted, rest[1:], strict=True) if v), entries, int(count)))
    return found


def _holds(resolved: Resolved, layers: Mapping[str, str], tags: set[tuple[int, ...]], stores: set[tuple[int, ...]],
           segments: set[str]) -> bool:
    """`audience_condition` for a class of members, from its atoms."""
    audience = resolved.audience
    return (
        (not audience.layers or layers[audience.scheme] in audience.layers)
        and (not audience.lifecycle or layers[LIFECYCLE] in audience.lifecycle)
        and (resolved.tag_ids is None or resolved.tag_ids in tags)
        and (not resolved.exclude_tag_ids or resolved.exclude_tag_ids not in tags)
        and (resolved.store_ids is None or resolved.store_ids in stores)
        and (not resolved.audience.segment or resolved.audience.segment in segments)
    )


async def sample_member(session: AsyncSession, resolved: Resolved) -> tuple[str | None, str | None] | None:
    """The name and store of one audience member (the first by id), for a rendered sample."""
    statement = (
        select(MEMBERS.c.name, STORES.c.name)
        .select_from(MEMBERS.outerjoin(STORES, STORES.c.id == MEMBERS.c.store_id))
        .where(audience_condition(MEMBERS, resolved))
        .order_by(MEMBERS.c.id)
        .limit(1)
    )
    row = (await session.execute(statement)).first()
    return (row[0], row[1]) if row else None
