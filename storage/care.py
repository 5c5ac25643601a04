"""The queries of the daily care scan and the six-moments plan: whose birthday, joining
anniversary, festival or dormancy it is, how to reach them, and what was already done.

Every question is a few indexed statements, whatever the number of members: birthdays
by (`birth_md`, calendar), anniversaries by the month-day of `member_since`, layers by
(scheme, layer), dormancy by the time indexes of interactions and orders. Only the
members concerned come into Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, exists, func, or_, select, union, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialects import insert_ignoring_conflicts, month_day
from storage.models import (
    SixMomentsTouch,
    StaffTask,
)
from storage.tables import IDENTITIES, INTERACTIONS, LAYERS, MEMBERS, ORDERS, OUTBOX, STORES, TASKS, TOUCHES

# Platforms on which we may write to a member directly; on WeCom only staff may.
DIRECT_PLATFORMS = ("sandbox", "oa")
# Interactions that are ours, not hers: they do not make a member active.
OUR_KINDS = ("message_out", "staff_out")
CHUNK = 5000  # bound parameters per IN list


@dataclass(frozen=True, slots=True)
class LayerFilter:
    """Which members of the care scheme an action is for: the layers listed in `include`,
    or (include None) every layer but those in `exclude`, and members without a layer."""

    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CareMember:
    id: int
    name: str | None
    store: str | None
    owner_staff_id: int | None
    layer: str | None
    birth_month: int | None
    birth_day: int | None
    calendar: str
    leap: bool
    member_since: date | None
    # Asked for with reach=True: her most recent identity on a platform we may write to
    # directly ("platform:external_id"), and whether she has any identity at all (on
    # WeCom, only staff may write to her).
    direct: str | None = None
    known: bool = False

    @property
    def direct_identity(self) -> tuple[str, str] | None:
        if self.direct is None:
            return None
        platform, external_id = self.direct.split(":", 1)
        return platform, external_id


MEMBER_COLUMNS = 10  # CareMember's fields before the optional reach columns


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


def _members(scheme: str, layers: LayerFilter, reach: bool = False) -> Select:
    m, la, s = MEMBERS.c, LAYERS.c, STORES.c
    columns: list[Any] = [m.id, m.name, s.name, m.owner_staff_id, la.layer, m.birth_month, m.birth_day,
                          m.birthday_calendar, m.birthday_leap_month, m.member_since]
    if reach:
        mine = IDENTITIES.alias("direct_identity")
        columns.append(
            select(mine.c.platform + ":" + mine.c.external_id)
            .where(mine.c.member_id == m.id, mine.c.platform.in_(DIRECT_PLATFORMS))
            .order_by(mine.c.created_at.desc(), mine.c.id.desc()).limit(1).scalar_subquery()
        )
        columns.append(exists().where(IDENTITIES.c.member_id == m.id))
    on_layer = and_(la.member_id == m.id, la.scheme == scheme)
    if layers.include is not None:  # an inner join: the planner may start from the layer index
        joined = MEMBERS.join(LAYERS, on_layer)
        where: Any = la.layer.in_(layers.include)
    else:
        joined = MEMBERS.outerjoin(LAYERS, on_layer)
        where = or_(la.layer.is_(None), la.layer.not_in(layers.exclude)) if layers.exclude else None
    statement = select(*columns).select_from(joined.outerjoin(STORES, s.id == m.store_id)).where(m.left_at.is_(None))
    return statement if where is None else statement.where(where)


async def _fetch(session: AsyncSession, statement: Select) -> list[CareMember]:
    return [CareMember(*row) for row in (await session.execute(statement)).all()]


async def birthdays_matching(
    session: AsyncSession, scheme: str, solar: Iterable[int], lunar: Iterable[int], lunar_leap: Iterable[int],
    layers: LayerFilter, *, reach: bool = False,
) -> list[CareMember]:
    """Current members whose `birth_md` is one of these, per calendar: one index range
    per value, then the calendar and leap-month flag checked on those rows only."""
    solar, lunar, lunar_leap = sorted(solar), sorted(lunar), sorted(lunar_leap)
    m = MEMBERS.c
    calendars = []
    if solar:
        calendars.append(and_(m.birthday_calendar == "solar", m.birth_md.in_(solar)))
    if lunar:
        calendars.append(and_(m.birthday_calendar == "lunar", m.birthday_leap_month.is_(False), m.birth_md.in_(lunar)))
    if lunar_leap:
        calendars.append(and_(m.birthday_calendar == "lunar", m.birthday_leap_month.is_(True),
                              m.birth_md.in_(lunar_leap)))
    if not calendars:
        return []
    every = sorted(set(solar) | set(lunar) | set(lunar_leap))
    statement = _members(scheme, layers, reach).where(m.birth_md.in_(every), or_(*calendars))
    return await _fetch(session, statement)


async def anniversaries_matching(
    session: AsyncSession, scheme: str, month_days: Iterable[int], joined_before: date, layers: LayerFilter,
    *, reach: bool = False,
) -> list[CareMember]:
    """Current members who joined on one of these month-days (month * 100 + day) before
    `joined_before`: one range of the month-day index per value."""
    month_days = sorted(month_days)
    if not month_days:
        return []
    m = MEMBERS.c
    statement = _members(scheme, layers, reach).where(
        m.member_since < joined_before, month_day(m.member_since).in_(month_days)
    )
    return await _fetch(session, statement)


async def layer_members(
    session: AsyncSession, scheme: str, layers: LayerFilter, *, reach: bool = False
) -> list[CareMember]:
    """Every current member the filter takes in (a festival's audience)."""
    return await _fetch(session, _members(scheme, layers, reach))


async def dormant_members(
    session: AsyncSession, scheme: str, last_active_from: datetime, quiet_since: datetime, layers: LayerFilter,
    *, reach: bool = False,
) -> list[CareMember]:
    """Current members who fell quiet: their last interaction (hers, not ours) or order
    was in [last_active_from, quiet_since), and nothing since. Found through the time
    indexes of interactions and orders, then checked per candidate through the (member,
    time) indexes. A member who never did anything has no last activity: not included."""
    m, i, o = MEMBERS.c, INTERACTIONS.c, ORDERS.c
    theirs = i.kind.not_in(OUR_KINDS)
    recent = union(
        select(i.member_id).where(i.at >= last_active_from, i.at < quiet_since, theirs),
        select(o.member_id).where(o.ordered_at >= last_active_from, o.ordered_at < quiet_since),
    ).subquery()
    active_since = or_(
        exists().where(i.member_id == m.id, i.at >= quiet_since, theirs),
        exists().where(o.member_id == m.id, o.ordered_at >= quiet_since),
    )
    statement = _members(scheme, layers, reach).where(m.id.in_(select(recent.c.member_id)), ~active_since)
    return await _fetch(session, statement)


async def existing_keys(session: AsyncSession, table: str, keys: Sequence[str]) -> set[str]:
    """Which of these dedupe keys are already in the outbox ("outbox") or tasks ("tasks")."""
    column = (OUTBOX if table == "outbox" else TASKS).c.dedupe_key
    found: set[str] = set()
    for chunk in _chunks(sorted(set(keys))):
        found.update((await session.execute(select(column).where(column.in_(chunk)))).scalars())
    return found


async def task_ids(session: AsyncSession, keys: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(sorted(set(keys))):
        rows = await session.execute(select(TASKS.c.dedupe_key, TASKS.c.id).where(TASKS.c.dedupe_key.in_(chunk)))
        found.update({key: task_id for key, task_id in rows})
    return found


# ── Six moments (六次互动) ──────────────────────────────────────────────────────────────


async def members_needing_plan(session: AsyncSession, scheme: str, layer: str, today: date) -> list[CareMember]:
    """Members of the top layer with no plan for this year and none from last year still
    running: new entrants, and everyone once a year."""
    m, t = MEMBERS.c, TOUCHES.c
    planned = exists().where(t.member_id == m.id, or_(
        t.year == today.year, and_(t.year == today.year - 1, t.due_date >= today)
    ))
    return await _fetch(session, _members(scheme, LayerFilter(include=(layer,))).where(~planned))


async def add_touches(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert planned touches (member_id, year, slot, kind, due_date, label, planned_at)."""
    if rows:
        statement = insert_ignoring_conflicts(TOUCHES, session.bind.dialect.name, ["member_id", "year", "slot"])
        await session.execute(statement, list(rows))


@dataclass(frozen=True, slots=True)
class DueTouch:
    year: int
    slot: int
    kind: str
    due_date: date
    label: str
    member: CareMember


async def due_touches(session: AsyncSession, scheme: str, layer: str, first: date, last: date) -> list[DueTouch]:
    """Touches due in [first, last] without a task yet, of members still in the layer."""
    t = TOUCHES.c
    statement = _members(scheme, LayerFilter(include=(layer,))).join(TOUCHES, t.member_id == MEMBERS.c.id).where(
        t.due_date >= first, t.due_date <= last, t.task_id.is_(None)
    ).add_columns(t.year, t.slot, t.kind, t.due_date, t.label)
    rows = (await session.execute(statement)).all()
    return [DueTouch(*row[MEMBER_COLUMNS:], member=CareMember(*row[:MEMBER_COLUMNS])) for row in rows]


async def link_touches(session: AsyncSession, links: Sequence[tuple[int, int, int, int]]) -> None:
    """Record each touch's task: (member_id, year, slot, task_id)."""
    if not links:
        return
    t = TOUCHES.c
    statement = update(TOUCHES).where(
        t.member_id == bindparam("b_member"), t.year == bindparam("b_year"), t.slot == bindparam("b_slot")
    ).values(task_id=bindparam("b_task"))
    await session.execute(statement, [
        {"b_member": member_id, "b_year": year, "b_slot": slot, "b_task": task_id} for member_id, year, slot, task_id in links
    ])


async def plan_of(session: AsyncSession, member_id: int) -> list[tuple[SixMomentsTouch, str | None]]:
    """The member's latest six-moments plan, with each touch's task status."""
    latest = select(func.max(SixMomentsTouch.year)).where(SixMomentsTouch.member_id == member_id).scalar_subquery()
    statement = (
        select(SixMomentsTouch, StaffTask.status)
        .outerjoin(StaffTask, StaffTask.id == SixMomentsTouch.task_id)  # type: ignore[arg-type]
        .where(SixMomentsTouch.member_id == member_id, SixMomentsTouch.year == latest)
        .order_by(SixMomentsTouch.slot)  # type: ignore[arg-type]
    )
    return [(touch, status) for touch, status in (await session.execute(statement)).all()]
