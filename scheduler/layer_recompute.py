"""Recompute a scheme's layers in the database: RFM over the window, the scheme's first
matching layer per member, assignments with the metrics behind them, moves as history,
and a task for the owner on a move into the top layer or out of the top two.

Everything runs as set-based SQL over temporary tables, never member by member in
Python. An incremental run takes only members whose inputs changed since the last run
(new orders, interactions, tags, profile edits, or a time boundary a rule counts from).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    delete,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    union,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from scheduler.layer_rules import INTERACTIONS, OPERATORS, Condition, Layer, RfmSpec, Scheme, quantile_positions
from storage.dialects import dialect_insert, upsert
from storage.interactions import activity_since
from storage.models import Interaction, LayerAssignment, LayerMove, LayerRun, Member, MemberTag, Order, Tag
from storage.tables import LTV_SCORES
from storage.tasks import NewTask, create_tasks

log = logging.getLogger(__name__)
Render = Callable[[str, dict[str, Any]], str]
TASK_TEMPLATE = "staff/layer_move.txt.j2"
MOMENT = Order.__table__.c.ordered_at.type  # type: ignore[attr-defined]  # stored as the models store times


@dataclass(frozen=True, slots=True)
class RecomputeReport:
    scheme: str
    members: int  # members computed
    moves: int
    tasks: int
    full: bool

    def __str__(self) -> str:
        kind = "full" if self.full else "incremental"
        return f"{self.scheme}: {kind}, {self.members} members computed, {self.moves} moved, {self.tasks} tasks"


def _tables(windows: Sequence[int]) -> tuple[Table, Table, Table]:
    meta = MetaData()
    candidates = Table("siyu_candidates", meta, Column("member_id", Integer, primary_key=True), prefixes=["TEMPORARY"])
    rfm = Table(
        "siyu_rfm", meta,
        Column("member_id", Integer, primary_key=True),
        Column("last_at", MOMENT), Column("freq", Integer), Column("money", BigInteger),
        prefixes=["TEMPORARY"],
    )
    inputs = Table(
        "siyu_inputs", meta,
        Column("member_id", Integer, primary_key=True),
        Column("last_at", MOMENT), Column("freq", Integer), Column("money", BigInteger),
        Column("r", Integer), Column("f", Integer), Column("m", Integer),
        Column("paid", Boolean), Column("joined", Date), Column("referrals", Integer),
        Column("layer", String(32)),
        Column("p_alive", Float), Column("orders_90d", Float), Column("clv_90d", Float),
        *(Column(f"i{n}", Integer) for n in sorted(windows)),
        prefixes=["TEMPORARY"],
    )
    return candidates, rfm, inputs


async def recompute(
    session: AsyncSession,
    scheme: Scheme,
    rfm: RfmSpec,
    now: datetime,
    today: date,
    render: Render,
    *,
    full: bool = False,
) -> RecomputeReport:
    run = await session.get(LayerRun, scheme.name)
    rules = scheme_fingerprint(scheme)
    # Changed conditions (an operator's edit) concern every member, not only those whose inputs changed.
    full = full or run is None or json.loads(run.cut_points or "{}").get("rules") != rules
    windows = scheme.interaction_windows()
    candidates, rfm_table, inputs = _tables(windows)
    connection = await session.connection()
    for table in (candidates, rfm_table, inputs):
        await connection.run_sync(lambda c, t=table: t.drop(c, checkfirst=True))
        await connection.run_sync(lambda c, t=table: t.create(c))
    last_order_id = (await session.execute(select(func.coalesce(func.max(Order.id), 0)))).scalar_one()
    last_interaction_id = (await session.execute(select(func.coalesce(func.max(Interaction.id), 0)))).scalar_one()
    if not full:
        assert run is not None
        await session.execute(candidates.insert().from_select(["member_id"], _changed(scheme, rfm, run, now, today)))
    only = (lambda column: column.in_(select(candidates.c.member_id))) if not full else (lambda column: true())

    window_start = now - timedelta(days=rfm.window_days)
    await session.execute(rfm_table.insert().from_select(
        ["member_id", "last_at", "freq", "money"],
        select(Order.member_id, func.max(Order.ordered_at), func.count(), func.sum(Order.amount_cents))
        .where(Order.ordered_at >= window_start, only(Order.member_id))
        .group_by(Order.member_id),
    ))
    cuts = await _cut_points(session, rfm_table, rfm, run, now, full)
    await _fill_inputs(session, inputs, rfm_table, scheme, cuts, now, today, only)
    members = (await session.execute(select(func.count()).select_from(inputs))).scalar_one()
    moves, tasks = await _apply(session, scheme, inputs, now, today, render, first_run=run is None)
    await session.execute(upsert(LayerRun.__table__, session.bind.dialect.name, ["scheme"], {  # type: ignore[attr-defined]
        "scheme": scheme.name, "ran_at": now, "last_order_id": last_order_id,
        "last_interaction_id": last_interaction_id, "cut_points": json.dumps(cuts.to_json() | {"rules": rules}),
    }))
    for table in (candidates, rfm_table, inputs):
        await connection.run_sync(lambda c, t=table: t.drop(c, checkfirst=True))
    return RecomputeReport(scheme.name, members, moves, tasks, full)


def scheme_fingerprint(scheme: Scheme) -> str:
    """What the scheme's layers say, in short: a run under other conditions starts over."""
    return hashlib.sha256(repr(scheme.layers).encode()).hexdigest()[:16]


# ── Which members changed ──────────────────────────────────────────────────────────────


def _changed(scheme: Scheme, rfm: RfmSpec, run: LayerRun, now: datetime, today: date):  # noqa: ANN202
    """Members whose inputs changed since `run`, or for whom time crossed a boundary a
    rule or a score counts from (an order leaving the window, a recency threshold, the
    Nth day since joining, an interaction leaving an N-day window)."""
    since = run.ran_at
    parts = [
        select(Order.member_id).where(Order.id > run.last_order_id),
        select(Interaction.member_id).where(Interaction.id > run.last_interaction_id),
        select(MemberTag.member_id).where(MemberTag.last_seen > since),
        select(Member.id).where(Member.updated_at > since),
    ]
    if scheme.uses_ltv():
        parts.append(select(LTV_SCORES.c.member_id).where(LTV_SCORES.c.scored_at > since))  # a new fit
    order_days = {rfm.window_days, *_days_in(scheme, "recency_days")}
    if rfm.method == "thresholds":
        order_days |= set(rfm.recency_days)
    for days in order_days:
        shift = timedelta(days=days)
        parts.append(select(Order.member_id).where(Order.ordered_at > since - shift, Order.ordered_at <= now - shift))
    for days in _days_in(scheme, "days_since_joining"):
        shift = timedelta(days=days)
        parts.append(select(Member.id).where(Member.member_since > since.date() - shift, Member.member_since <= today - shift))
    for days in scheme.interaction_windows():
        shift = timedelta(days=days)
        parts.append(select(Interaction.member_id).where(Interaction.at > since - shift, Interaction.at <= now - shift))
        parts.append(select(Order.member_id).where(Order.ordered_at > since - shift, Order.ordered_at <= now - shift))
    return union(*parts)


def _days_in(scheme: Scheme, metric: str) -> set[int]:
    return {int(c.value) for layer in scheme.layers for c in layer.conditions if c.metric == metric}


# ── Scores ─────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Cuts:
    recency: tuple[datetime, ...]
    frequency: tuple[float, ...]
    monetary: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return {"recency": [c.isoformat() for c in self.recency], "frequency": self.frequency, "monetary": self.monetary}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Cuts:
        return Cuts(tuple(datetime.fromisoformat(c) for c in data.get("recency", ())),
                    tuple(data.get("frequency", ())), tuple(data.get("monetary", ())))


async def _cut_points(
    session: AsyncSession, rfm_table: Table, rfm: RfmSpec, run: LayerRun | None, now: datetime, full: bool
) -> Cuts:
    if rfm.method == "thresholds":
        # "At least N" as "above N - 1": whole orders and whole cents.
        return Cuts(
            tuple(now - timedelta(days=d) for d in sorted(rfm.recency_days, reverse=True)),
            tuple(float(t - 1) for t in sorted(rfm.frequency)),
            tuple(float(round(t * 100) - 1) for t in sorted(rfm.monetary_yuan)),
        )
    if not full and run is not None:
        stored = Cuts.from_json(json.loads(run.cut_points))
        if stored.frequency:
            return stored  # scored against the last full run's quintiles
    count = (await session.execute(select(func.count()).select_from(rfm_table))).scalar_one()
    positions = quantile_positions(count)
    return Cuts(*[tuple(await _values_at(session, rfm_table.c[name], positions)) for name in ("last_at", "freq", "money")])


async def _values_at(session: AsyncSession, column: Any, positions: list[int]) -> list[Any]:
    if not positions:
        return []
    ranked = select(column.label("v"), func.row_number().over(order_by=column).label("n")).subquery()
    found = dict((await session.execute(select(ranked.c.n, ranked.c.v).where(ranked.c.n.in_(positions)))).all())
    return [found[p] for p in positions]


def _score(column: Any, cuts: Sequence[Any]) -> ColumnElement:
    if not cuts:
        return case((column.is_(None), None), else_=literal(1))
    above = sum((case((column > cut, 1), else_=0) for cut in cuts), literal(1))
    return case((column.is_(None), None), else_=above)


# ── Inputs and the layer rules ─────────────────────────────────────────────────────────


async def _fill_inputs(
    session: AsyncSession, inputs: Table, rfm_table: Table, scheme: Scheme, cuts: Cuts,
    now: datetime, today: date, only: Callable[[Any], Any],
) -> None:
    r = rfm_table
    referrals = (
        select(Member.referrer_id.label("member_id"), func.count().label("n"))  # type: ignore[union-attr]
        .where(Member.referrer_id.is_not(None)).group_by(Member.referrer_id).subquery()  # type: ignore[union-attr]
    )
    windows = sorted(scheme.interaction_windows())
    acts = {n: activity_since(now - timedelta(days=n)).subquery() for n in windows}
    counted = {
        n: select(acts[n].c.member_id, func.count().label("n"))
        .where(only(acts[n].c.member_id))
        .group_by(acts[n].c.member_id).subquery()
        for n in windows
    }
    joined = func.coalesce(Member.member_since, func.date(Member.created_at)) if session.bind.dialect.name == "sqlite" \
        else func.coalesce(Member.member_since, func.cast(Member.created_at, Date))
    statement = (
        select(
            Member.id, r.c.last_at, func.coalesce(r.c.freq, 0), func.coalesce(r.c.money, 0),
            _score(r.c.last_at, cuts.recency), _score(r.c.freq, cuts.frequency), _score(r.c.money, cuts.monetary),
            Member.paid_member, joined, func.coalesce(referrals.c.n, 0), literal(None),
            LTV_SCORES.c.p_alive, LTV_SCORES.c.orders_90d, LTV_SCORES.c.clv_90d_cents / 100.0,
            *(func.coalesce(counted[n].c.n, 0) for n in windows),
        )
        .select_from(Member)
        .outerjoin(r, r.c.member_id == Member.id)
        .outerjoin(LTV_SCORES, LTV_SCORES.c.member_id == Member.id)
        .outerjoin(referrals, referrals.c.member_id == Member.id)
        .where(only(Member.id))
    )
    for n in windows:
        statement = statement.outerjoin(counted[n], counted[n].c.member_id == Member.id)
    columns = ["member_id", "last_at", "freq", "money", "r", "f", "m", "paid", "joined", "referrals", "layer",
               "p_alive", "orders_90d", "clv_90d", *(f"i{n}" for n in windows)]
    await session.execute(inputs.insert().from_select(columns, statement))
    tag_ids = await _tag_ids(session, scheme.tags())
    layer = case(*((_condition(layer, inputs, tag_ids, now, today), layer.name) for layer in scheme.layers), else_=None)
    await session.execute(inputs.update().values(layer=layer))


async def _tag_ids(session: AsyncSession, names: set[str]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {name: [] for name in names}
    if names:
        for tag_id, name in (await session.execute(select(Tag.id, Tag.name).where(Tag.name.in_(names)))).all():  # type: ignore[attr-defined]
            found[name].append(tag_id)
    return found


def _condition(layer: Layer, inputs: Table, tag_ids: dict[str, list[int]], now: datetime, today: date) -> ColumnElement:
    parts: list[ColumnElement] = [_metric(c, inputs, now, today) for c in layer.conditions]

    def has(name: str) -> ColumnElement:
        ids = tag_ids.get(name) or [-1]
        return exists().where(MemberTag.member_id == inputs.c.member_id, MemberTag.tag_id.in_(ids))  # type: ignore[attr-defined]

    parts += [has(t) for t in layer.tags_all]
    if layer.tags_any:
        parts.append(or_(*(has(t) for t in layer.tags_any)))
    parts += [not_(has(t)) for t in layer.tags_none]
    return and_(true(), *parts)


# "Days since" compared through the moment itself: more days is an earlier moment.
FLIPPED = {">=": "<=", "<=": ">=", ">": "<", "<": ">", "==": "==", "!=": "!="}


def _metric(c: Condition, inputs: Table, now: datetime, today: date) -> ColumnElement:
    """The condition as SQL, with `Condition.holds`'s meaning: a missing value never holds."""
    col = inputs.c
    if c.metric == "recency_days":
        moment = now - timedelta(days=float(c.value))
        flipped = FLIPPED[c.op]
        if c.op in ("==", "!="):
            day_start, day_end = moment - timedelta(days=1), moment
            inside = and_(col.last_at > day_start, col.last_at <= day_end)
            return inside if c.op == "==" else and_(col.last_at.is_not(None), not_(inside))
        return _compare(col.last_at, flipped, moment)
    if c.metric == "days_since_joining":
        day = today - timedelta(days=int(c.value))
        return _compare(col.joined, FLIPPED[c.op], day)
    if c.metric == "paid_member":
        return _compare(col.paid, c.op, true() if c.value else false())
    if c.metric == "monetary":
        return _compare(col.money, c.op, round(float(c.value) * 100))
    if (match := INTERACTIONS.fullmatch(c.metric)) is not None:
        return _compare(col[f"i{match.group(1)}"], c.op, c.value)
    column = {"frequency": col.freq, "r_score": col.r, "f_score": col.f, "m_score": col.m, "referrals": col.referrals,
              "p_alive": col.p_alive, "orders_90d": col.orders_90d, "clv_90d": col.clv_90d}
    return _compare(column[c.metric], c.op, c.value)


def _compare(column: Any, op: str, value: Any) -> ColumnElement:
    return and_(column.is_not(None), OPERATORS[op](column, value))


# ── Writing: moves, tasks, assignments ─────────────────────────────────────────────────


async def _apply(
    session: AsyncSession, scheme: Scheme, inputs: Table, now: datetime, today: date, render: Render,
    *, first_run: bool,
) -> tuple[int, int]:
    a = LayerAssignment.__table__  # type: ignore[attr-defined]
    moves = LayerMove.__table__  # type: ignore[attr-defined]
    before = (await session.execute(select(func.coalesce(func.max(moves.c.id), 0)))).scalar_one()
    current = select(a.c.member_id, a.c.layer).where(a.c.scheme == scheme.name).subquery()
    changed = (
        select(inputs.c.member_id, literal(scheme.name), current.c.layer, inputs.c.layer, literal(now))
        .outerjoin(current, current.c.member_id == inputs.c.member_id)
        .where(inputs.c.layer.is_not(None), or_(current.c.layer.is_(None), current.c.layer != inputs.c.layer))
    )
    await session.execute(moves.insert().from_select(["member_id", "scheme", "from_layer", "to_layer", "moved_at"], changed))
    moved = (await session.execute(select(func.count()).where(moves.c.id > before))).scalar_one()

    metrics = _metrics_json(session.bind.dialect.name, inputs, now, ltv=scheme.uses_ltv())
    rows = select(inputs.c.member_id, literal(scheme.name), inputs.c.layer, metrics, literal(now)).where(
        inputs.c.layer.is_not(None)
    )
    statement = dialect_insert(a, session.bind.dialect.name).from_select(["member_id", "scheme", "layer", "metrics", "assigned_at"], rows)
    excluded = statement.excluded  # type: ignore[attr-defined]
    statement = statement.on_conflict_do_update(  # type: ignore[attr-defined]
        index_elements=["member_id", "scheme"],
        set_={
            "layer": excluded.layer,
            "metrics": excluded.metrics,
            # When she arrived in the layer, not when her numbers last moved.
            "assigned_at": case((a.c.layer != excluded.layer, excluded.assigned_at), else_=a.c.assigned_at),
        },
    )
    await session.execute(statement)
    await session.execute(delete(a).where(
        a.c.scheme == scheme.name,
        a.c.member_id.in_(select(inputs.c.member_id).where(inputs.c.layer.is_(None))),
    ))
    tasks = 0 if first_run or not scheme.staff_tasks else await _move_tasks(session, scheme, before, today, render, now)
    return moved, tasks


def _metrics_json(dialect: str, inputs: Table, now: datetime, *, ltv: bool = False) -> Any:
    c = inputs.c
    pairs = {"frequency": c.freq, "monetary_cents": c.money, "r_score": c.r, "f_score": c.f, "m_score": c.m,
             "paid_member": c.paid, "referrals": c.referrals, "last_order_at": c.last_at}
    if ltv:  # kept only where a scheme decides by them; the member page reads the scores themselves
        pairs |= {"p_alive": c.p_alive, "orders_90d": c.orders_90d, "clv_90d": c.clv_90d}
    pairs |= {f"interactions_{name[1:]}d": c[name] for name in map(str, c.keys()) if name[:1] == "i" and name[1:].isdigit()}
    build = func.json_object if dialect == "sqlite" else func.json_build_object
    args: list[Any] = []
    for key, column in pairs.items():
        args += [literal(key, String), column]
    return build(*args)


async def _move_tasks(
    session: AsyncSession, scheme: Scheme, after_move: int, today: date, render: Render, now: datetime
) -> int:
    """A task for the owner on a move up into the top layer, or down out of the top two."""
    top, top_two = scheme.top(), scheme.top_two()
    moves = LayerMove.__table__  # type: ignore[attr-defined]
    rows = (await session.execute(
        select(moves.c.id, moves.c.from_layer, moves.c.to_layer, Member.id, Member.name, Member.owner_staff_id)
        .join(Member, Member.id == moves.c.member_id)
        .where(moves.c.id > after_move, moves.c.from_layer.is_not(None), or_(
            and_(moves.c.to_layer == top, moves.c.from_layer != top),
            and_(moves.c.from_layer.in_(top_two), moves.c.to_layer.not_in(top_two)),
        ))
    )).all()
    labels = {layer.name: layer.label or layer.name for layer in scheme.layers}
    tasks: list[NewTask] = []
    for move_id, source, target, member_id, name, owner in rows:
        kind = "top_layer_welcome" if target == top else "at_risk"
        variables = {"kind": kind, "member": {"name": name}, "scheme": scheme.label or scheme.name,
                     "from_layer": labels.get(source, source), "to_layer": labels.get(target, target)}
        title = f"{'新晋' if kind == 'top_layer_welcome' else '流失风险'}：{name or member_id}（{labels.get(target, target)}）"
        tasks.append(NewTask(
            dedupe_key=f"layer-move:{move_id}", kind=kind, title=title[:256], due_date=today,
            staff_id=owner, member_id=member_id, body=render(TASK_TEMPLATE, variables),
        ))
    await create_tasks(session, tasks, now)
    return len(tasks)
