"""Touches and what followed them: recording a touch (or a holdout), and the set-based
queries behind the outcomes report — per source, the members reached and held out with
what they bought in the window after, and the orders credited to a touch.

Rules (docs/architecture.md, "Outcomes"):
- A touch is a delivered member-facing message (calendar entry, care occasion, welcome
  via a channel code, auto-reply) or a staff task marked done. A holdout is a touch row
  with `held_out` set: the member was chosen not to be sent, at the time she would have been.
- Comparison (lift): per source, each member counts once, from her first touch (or
  holdout) in the range; she converted if she ordered within the source kind's window after.
- Credit (attribution): each order goes to one delivered touch within its window before
  the order — the last such touch (default) or the first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialects import insert_ignoring_conflicts
from storage.models import CalendarEntry
from storage.tables import (
    IDENTITIES, LAYERS, MEMBER_TAGS, MEMBERS, ORDERS, OUTCOME_TOUCHES, STAFF, STORES, TASKS,
)

Dimension = Literal["entry", "occasion", "channel", "staff", "store", "layer", "source"]
DIMENSIONS: tuple[str, ...] = ("entry", "occasion", "channel", "staff", "store", "layer", "source")
KINDS = ("entry", "occasion", "channel", "auto_reply", "staff")
# Dimensions that are one source kind, grouped by its reference.
KIND_OF: dict[str, str] = {"entry": "entry", "occasion": "occasion", "channel": "channel"}
DEFAULT_WINDOW_DAYS = 7
# Converters in a group above which their revenues are not listed (the interval then
# comes from the sums: at that size the bootstrap and the normal approximation agree).
REVENUES_LIMIT = 20_000
CALENDAR = CalendarEntry.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class TouchSource:
    kind: str
    ref: str


def source_of(dedupe_key: str, route: str, meta: Mapping[str, Any]) -> TouchSource | None:
    """What an outbox row delivered to a member was for, from its key, route and meta;
    None for rows that are not member-facing touches (requests, prompts)."""
    if route == "welcome":
        return TouchSource("channel", "")  # the channel code is read from her channel tag
    if route != "message":
        return None
    if "entry" in meta:
        return TouchSource("entry", str(meta["entry"])[:64])
    if dedupe_key.startswith("care:"):
        return TouchSource("occasion", dedupe_key.split(":")[1][:64])
    if dedupe_key.startswith("reply:"):
        return TouchSource("auto_reply", "")
    return None


@dataclass(frozen=True, slots=True)
class NewTouch:
    member_id: int
    at: datetime
    source: TouchSource
    ref: str  # once per ref: the outbox row, task or holdout it stands for
    staff_id: int | None = None  # None: her owner
    held_out: bool = False


async def record_touch(
    session: AsyncSession, member_id: int, at: datetime, source: TouchSource, ref: str, *,
    staff_id: int | None = None, held_out: bool = False, scheme: str = "value",
) -> None:
    """One touch, once per `ref`, with her owner, store and layer as they are now."""
    await record_touches(session, [NewTouch(member_id, at, source, ref, staff_id, held_out)], scheme)


async def record_touches(session: AsyncSession, touches: Sequence[NewTouch], scheme: str = "value") -> None:
    """Touches in one statement (a welcome burst sends hundreds a second), each once per
    `ref`, with her owner (unless a staff member is given), store and layer as they are
    now; a welcome's channel is the state of her newest `channel:<state>` tag."""
    if not touches:
        return
    # The rows as a SELECT … UNION ALL (SQLite names no columns of a VALUES list).
    at_type = OUTCOME_TOUCHES.c.at.type
    given = union_all(*(
        select(literal(t.member_id, Integer).label("member_id"), literal(t.at, at_type).label("at"),
               literal(t.source.kind, String).label("kind"), literal(t.source.ref, String).label("source_ref"),
               literal(t.staff_id, Integer).label("staff_id"), literal(t.held_out, Boolean).label("held_out"),
               literal(t.ref, String).label("ref"))
        for t in touches
    )).cte("given")
    tag_ref = MEMBER_TAGS.c.source_ref
    channel = (
        select(func.substr(tag_ref, 9)).where(MEMBER_TAGS.c.member_id == given.c.member_id, tag_ref.like("channel:%"))
        .order_by(MEMBER_TAGS.c.first_seen.desc()).limit(1).scalar_subquery()
    )
    chosen = (
        select(given.c.member_id, given.c.at, given.c.kind,
               case((and_(given.c.kind == "channel", given.c.source_ref == ""), func.coalesce(channel, "")),
                    else_=given.c.source_ref),
               func.coalesce(given.c.staff_id, MEMBERS.c.owner_staff_id), MEMBERS.c.store_id, LAYERS.c.layer,
               given.c.held_out, given.c.ref)
        .select_from(given.join(MEMBERS, MEMBERS.c.id == given.c.member_id)
                     .outerjoin(LAYERS, and_(LAYERS.c.member_id == given.c.member_id, LAYERS.c.scheme == scheme)))
        .where(true())  # SQLite reads ON CONFLICT after a join as part of it without a WHERE
    )
    await session.execute(insert_ignoring_conflicts(OUTCOME_TOUCHES, session.bind.dialect.name, ["ref"]).from_select(
        ["member_id", "at", "source_kind", "source_ref", "staff_id", "store_id", "layer", "held_out", "ref"], chosen))


async def record_holdouts(
    session: AsyncSession, member_ids: Sequence[int], at: datetime, source: TouchSource, key: str, scheme: str = "value",
) -> None:
    """The members held out of one occurrence of a source, in one set-based insert."""
    if not member_ids:
        return
    chosen = (
        select(MEMBERS.c.id, literal(at, OUTCOME_TOUCHES.c.at.type), literal(source.kind), literal(source.ref),
               MEMBERS.c.owner_staff_id, MEMBERS.c.store_id, LAYERS.c.layer, literal(True),
               (literal(f"holdout:{key}:") + func.cast(MEMBERS.c.id, OUTCOME_TOUCHES.c.ref.type)))
        .select_from(MEMBERS.outerjoin(LAYERS, and_(LAYERS.c.member_id == MEMBERS.c.id, LAYERS.c.scheme == scheme)))
        .where(MEMBERS.c.id.in_(list(member_ids)))
    )
    statement = insert_ignoring_conflicts(OUTCOME_TOUCHES, session.bind.dialect.name, ["ref"]).from_select(
        ["member_id", "at", "source_kind", "source_ref", "staff_id", "store_id", "layer", "held_out", "ref"], chosen)
    await session.execute(statement)


@dataclass(frozen=True, slots=True)
class Received:
    """A customer a platform says a send reached (a WeCom mass send she was sent, a
    Moments post shown to her): by her id on that platform, when, and its touch's ref."""

    external_id: str
    at: datetime
    ref: str


RECEIVED_CHUNK = 500  # identities looked up per statement


async def record_received(
    session: AsyncSession, platform: str, source: TouchSource, staff_id: int | None, received: Sequence[Received],
    scheme: str = "value",
) -> int:
    """One touch per customer who received a send we only learn of afterwards, once per
    ref (reading the results again adds nothing); customers who are not our members
    are passed over. Returns how many touches are new."""
    added = 0
    for n in range(0, len(received), RECEIVED_CHUNK):
        chunk = {r.external_id: r for r in received[n:n + RECEIVED_CHUNK]}
        known = (await session.execute(
            select(IDENTITIES.c.external_id, MEMBERS.c.id, MEMBERS.c.owner_staff_id, MEMBERS.c.store_id, LAYERS.c.layer)
            .select_from(IDENTITIES.join(MEMBERS, MEMBERS.c.id == IDENTITIES.c.member_id)
                         .outerjoin(LAYERS, and_(LAYERS.c.member_id == MEMBERS.c.id, LAYERS.c.scheme == scheme)))
            .where(IDENTITIES.c.platform == platform, IDENTITIES.c.external_id.in_(list(chunk)))
        )).all()
        if not known:
            continue
        rows = [
            {"member_id": member_id, "at": chunk[external_id].at, "source_kind": source.kind, "source_ref": source.ref,
             "staff_id": staff_id if staff_id is not None else owner, "store_id": store, "layer": layer,
             "held_out": False, "ref": chunk[external_id].ref}
            for external_id, member_id, owner, store, layer in known
        ]
        result = await session.execute(
            insert_ignoring_conflicts(OUTCOME_TOUCHES, session.bind.dialect.name, ["ref"]).values(rows)
            .returning(OUTCOME_TOUCHES.c.id))
        added += len(result.all())
    return added


async def record_task_touch(session: AsyncSession, task: Any, scheme: str = "value") -> None:
    """A staff task just marked done, as its touch (`task:<id>`, as sync_task_touches
    writes it): at its done time, by its assignee (her owner if it had none), with the
    member's layer now."""
    assert task.id is not None and task.member_id is not None and task.done_at is not None
    await record_touch(session, task.member_id, task.done_at, TouchSource("staff", str(task.kind)[:64]),
                       f"task:{task.id}", staff_id=task.staff_id, scheme=scheme)


async def sync_task_touches(session: AsyncSession, scheme: str = "value") -> int:
    """The catch-up: every staff task marked done for a member that has no touch yet
    (closed before touches were recorded on closing) becomes one (once, `task:<id>`), in
    one set-based insert, with her layer now; run before each report and by the daily
    outcomes job."""
    k = TASKS.c
    done = (
        select(k.member_id, k.done_at, literal("staff"), func.substr(k.kind, 1, 64),
               func.coalesce(k.staff_id, MEMBERS.c.owner_staff_id), MEMBERS.c.store_id,
               LAYERS.c.layer, literal(False), literal("task:") + func.cast(k.id, OUTCOME_TOUCHES.c.ref.type))
        .select_from(TASKS.join(MEMBERS, MEMBERS.c.id == k.member_id)
                     .outerjoin(LAYERS, and_(LAYERS.c.member_id == k.member_id, LAYERS.c.scheme == scheme)))
        .where(k.status == "done", k.member_id.is_not(None), k.done_at.is_not(None),
               ~exists().where(OUTCOME_TOUCHES.c.ref == literal("task:") + func.cast(k.id, OUTCOME_TOUCHES.c.ref.type)))
    )
    result = await session.execute(
        insert_ignoring_conflicts(OUTCOME_TOUCHES, session.bind.dialect.name, ["ref"]).from_select(
            ["member_id", "at", "source_kind", "source_ref", "staff_id", "store_id", "layer", "held_out", "ref"], done)
        .returning(OUTCOME_TOUCHES.c.id))
    return len(result.all())


# ── The report ─────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class GroupFigures:
    """One source's group (reached or held out): members, converters, revenue (cents),
    and the revenue of each converter (for the bootstrap; the others bought nothing)."""

    members: int = 0
    converted: int = 0
    revenue_cents: int = 0
    revenues: tuple[int, ...] = ()  # listed for groups of at most REVENUES_LIMIT converters
    revenue_squares: float = 0.0  # the sum of each member's revenue squared (cents²), for any size


@dataclass(frozen=True, slots=True)
class SourceFigures:
    key: str
    label: str
    reached: GroupFigures
    held_out: GroupFigures
    credited_orders: int = 0
    credited_cents: int = 0


def _member_outcomes() -> Table:
    return Table(
        "siyu_member_outcomes", MetaData(),
        Column("key", String(191)), Column("held_out", Boolean), Column("member_id", Integer),
        Column("n", Integer), Column("cents", BigInteger),
        prefixes=["TEMPORARY"],
    )


def _within(dialect: str, later: Any, earlier: Any, days: Any) -> Any:
    """`later` is after `earlier` and at most `days` days after it."""
    if dialect == "sqlite":
        gap = func.julianday(later) - func.julianday(earlier)
        return and_(gap > 0, gap <= days)
    return and_(later > earlier, later <= earlier + func.make_interval(0, 0, 0, days))


def _orders_between(start: datetime, end: datetime, windows: Mapping[str, int]) -> list[Any]:
    """The orders any touch in [start, end) can reach, as a constant range: the planner
    reads them through the ordered_at index instead of scanning every order."""
    reach = timedelta(days=max([DEFAULT_WINDOW_DAYS, *windows.values()]))
    return [ORDERS.c.ordered_at > start, ORDERS.c.ordered_at <= end + reach]


def _window(windows: Mapping[str, int]) -> Any:
    column = OUTCOME_TOUCHES.c.source_kind
    return case(*((column == kind, days) for kind, days in windows.items()), else_=DEFAULT_WINDOW_DAYS)


def _key(by: str) -> Any:
    t = OUTCOME_TOUCHES.c
    return {"staff": t.staff_id, "store": t.store_id, "layer": t.layer,
            "source": t.source_kind + literal(":") + t.source_ref}.get(by, t.source_ref)


def _touches_in(by: str, start: datetime, end: datetime) -> list[Any]:
    t = OUTCOME_TOUCHES.c
    where = [t.at >= start, t.at < end]
    if by in KIND_OF:
        where.append(t.source_kind == KIND_OF[by])
    return where


async def outcome_figures(
    session: AsyncSession, by: str, start: datetime, end: datetime, windows: Mapping[str, int],
    attribution: Literal["last", "first"] = "last",
) -> list[SourceFigures]:
    """Per value of `by`, the reached and held-out groups' figures and the credited orders."""
    if by not in DIMENSIONS:
        raise ValueError(f"unknown dimension {by!r}")
    dialect = session.bind.dialect.name
    t = OUTCOME_TOUCHES.c
    key = func.coalesce(func.cast(_key(by), OUTCOME_TOUCHES.c.ref.type), "").label("key")
    first = (
        select(key, t.held_out, t.member_id, func.min(t.at).label("t0"), func.min(_window(windows)).label("days"))
        .where(*_touches_in(by, start, end))
        .group_by(key, t.held_out, t.member_id)
        .subquery()
    )
    o = ORDERS.c
    per_member = (
        select(first.c.key, first.c.held_out, first.c.member_id,
               func.count(o.id).label("n"), func.coalesce(func.sum(o.amount_cents), 0).label("cents"))
        .select_from(first.outerjoin(ORDERS, and_(o.member_id == first.c.member_id,
                                                  _within(dialect, o.ordered_at, first.c.t0, first.c.days),
                                                  *_orders_between(start, end, windows))))
        .group_by(first.c.key, first.c.held_out, first.c.member_id)
    )
    # Computed once into a temporary table, then summed and (for small groups) listed.
    table = _member_outcomes()
    connection = await session.connection()
    await connection.run_sync(lambda c: table.drop(c, checkfirst=True))
    await connection.run_sync(lambda c: table.create(c))
    try:
        await session.execute(table.insert().from_select(["key", "held_out", "member_id", "n", "cents"], per_member))
        m = table.c
        totals = (await session.execute(
            select(m.key, m.held_out, func.count(), func.sum(case((m.n > 0, 1), else_=0)),
                   func.coalesce(func.sum(m.cents), 0),
                   func.coalesce(func.sum(func.cast(m.cents, Float) * func.cast(m.cents, Float)), 0.0))
            .group_by(m.key, m.held_out)
        )).all()
        small = [(k, held) for k, held, _, converted, _, _ in totals if (converted or 0) <= REVENUES_LIMIT]
        revenues: dict[tuple[str, bool], list[int]] = {}
        if small:
            spent = await session.execute(select(m.key, m.held_out, m.cents).where(
                m.n > 0, or_(*(and_(m.key == k, m.held_out == held) for k, held in small))))
            for k, held, cents in spent.all():
                revenues.setdefault((k, bool(held)), []).append(int(cents))
    finally:
        await connection.run_sync(lambda c: table.drop(c, checkfirst=True))
    groups: dict[str, dict[bool, GroupFigures]] = {}
    for k, held, members, converted, cents, squares in totals:
        groups.setdefault(k, {})[bool(held)] = GroupFigures(
            int(members), int(converted or 0), int(cents or 0), tuple(revenues.get((k, bool(held)), ())),
            float(squares or 0.0))
    credited = await _credited(session, by, start, end, windows, attribution)
    labels = await _labels(session, by, list(groups))
    return [
        SourceFigures(k, labels.get(k, k), g.get(False, GroupFigures()), g.get(True, GroupFigures()),
                      *credited.get(k, (0, 0)))
        for k, g in sorted(groups.items())
    ]


async def _credited(
    session: AsyncSession, by: str, start: datetime, end: datetime, windows: Mapping[str, int],
    attribution: Literal["last", "first"],
) -> dict[str, tuple[int, int]]:
    """Orders credited to one delivered touch each (the last or first within its window),
    counted for the touches in the range."""
    dialect = session.bind.dialect.name
    t, o = OUTCOME_TOUCHES.c, ORDERS.c
    order = t.at.desc() if attribution == "last" else t.at.asc()
    key = func.coalesce(func.cast(_key(by), OUTCOME_TOUCHES.c.ref.type), "")
    ranked = (
        select(o.id.label("order_id"), o.amount_cents.label("cents"), t.at.label("at"), t.source_kind.label("kind"),
               key.label("key"),
               func.row_number().over(partition_by=o.id, order_by=(order, t.id.desc())).label("n"))
        .select_from(OUTCOME_TOUCHES.join(ORDERS, and_(o.member_id == t.member_id,
                                                      _within(dialect, o.ordered_at, t.at, _window(windows)),
                                                      *_orders_between(start, end, windows))))
        .where(t.held_out.is_(False), t.at >= start, t.at < end)
        .subquery()
    )
    where = [ranked.c.n == 1]
    if by in KIND_OF:
        where.append(ranked.c.kind == KIND_OF[by])
    rows = await session.execute(
        select(ranked.c.key, func.count(), func.coalesce(func.sum(ranked.c.cents), 0)).where(*where)
        .group_by(ranked.c.key)
    )
    return {k: (int(n), int(c)) for k, n, c in rows.all()}


async def _labels(session: AsyncSession, by: str, keys: list[str]) -> dict[str, str]:
    """Names people read: staff and stores by name, the rest as they are."""
    ids = [int(k) for k in keys if k.isdigit()]
    if by == "staff" and ids:
        rows = await session.execute(select(STAFF.c.id, STAFF.c.name).where(STAFF.c.id.in_(ids)))
        return {str(i): name for i, name in rows.all()}
    if by == "store" and ids:
        rows = await session.execute(select(STORES.c.id, STORES.c.name).where(STORES.c.id.in_(ids)))
        return {str(i): name for i, name in rows.all()}
    return {}


async def entry_titles(session: AsyncSession, ids: list[str]) -> dict[str, str]:
    """Calendar entries' titles by id (an entry deleted since keeps its id)."""
    if not ids:
        return {}
    rows = await session.execute(select(CALENDAR.c.id, CALENDAR.c.title).where(CALENDAR.c.id.in_(ids)))
    return {i: title for i, title in rows.all() if title}
