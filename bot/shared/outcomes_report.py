"""The outcomes report (成效) that the command, the API and the console page all show:
per source over a date range, members reached and held out, their conversion rate and
revenue per member, the difference and its 95 % interval — or 数据不足.

Dates are local days in the brand's zone: `start` through `end` inclusive.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from bot.settings.model import Settings
from bot.settings.outcomes import OutcomesSettings
from scheduler.lift import Group, Lift, lift
from storage.engine import SessionFactory
from storage.outcomes import GroupFigures, SourceFigures, entry_titles, outcome_figures, sync_task_touches

NOT_ENOUGH = "数据不足"
# What each source kind reads as, for the rows of --by source.
KIND_LABELS = {"entry": "日历", "occasion": "关怀", "channel": "活码", "auto_reply": "自动回复", "staff": "店员任务"}
OCCASION_LABELS = {"birthday": "生日", "anniversary": "入会周年", "winback": "好久不见"}


@dataclass(frozen=True, slots=True)
class GroupRow:
    members: int
    converted: int
    rate: float | None
    revenue_yuan: float
    per_member_yuan: float | None


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    key: str
    label: str
    reached: GroupRow
    held_out: GroupRow
    credited_orders: int
    credited_yuan: float
    enough: bool
    rate_lift: float | None
    rate_interval: tuple[float, float] | None
    revenue_lift_yuan: float | None
    revenue_interval_yuan: tuple[float, float] | None
    note: str  # 数据不足 and why, or ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class OutcomesReport:
    by: str
    start: date
    end: date
    attribution: str
    windows: dict[str, int]
    rows: list[OutcomeRow]

    def to_json(self) -> dict[str, Any]:
        return {"by": self.by, "from": self.start.isoformat(), "to": self.end.isoformat(),
                "attribution": self.attribution, "windows_days": self.windows,
                "rows": [r.to_json() for r in self.rows]}


def _group(g: GroupFigures) -> tuple[GroupRow, Group]:
    revenue = g.revenue_cents / 100
    row = GroupRow(g.members, g.converted, g.converted / g.members if g.members else None, revenue,
                   revenue / g.members if g.members else None)
    return row, Group(g.members, g.converted, revenue, [c / 100 for c in g.revenues], g.revenue_squares / 10_000)


def _label(by: str, figures: SourceFigures, names: dict[str, str]) -> str:
    if by in ("entry", "layer", "channel") and figures.key in names:
        return names[figures.key]
    if by == "occasion":
        key = figures.key
        return OCCASION_LABELS.get(key, key.removeprefix("festival-") if key.startswith("festival-") else key)
    if by == "source":
        kind, _, ref = figures.key.partition(":")
        return f"{KIND_LABELS.get(kind, kind)}：{OCCASION_LABELS.get(ref, ref) or '—'}"
    return figures.label or "—"


def _row(by: str, figures: SourceFigures, outcomes: OutcomesSettings, names: dict[str, str]) -> OutcomeRow:
    reached, a = _group(figures.reached)
    held, b = _group(figures.held_out)
    found: Lift = lift(a, b, outcomes.min_members, outcomes.min_conversions)
    return OutcomeRow(
        figures.key, _label(by, figures, names), reached, held, figures.credited_orders, figures.credited_cents / 100,
        found.enough, found.rate_difference, found.rate_interval, found.revenue_difference, found.revenue_interval,
        "" if found.enough else f"{NOT_ENOUGH}（{found.reason}）",
    )


def last_days(now: datetime, zone: ZoneInfo, days: int = 30) -> tuple[date, date]:
    """The default range: the `days` whole days up to yesterday — the brand's yesterday
    in its zone, not UTC's (at 01:00 in Shanghai, UTC is still on the day before)."""
    end = now.astimezone(zone).date() - timedelta(days=1)
    return end - timedelta(days=days - 1), end


def local_range(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    begin = datetime.combine(start, time(0), zone).astimezone(timezone.utc)
    finish = datetime.combine(end + timedelta(days=1), time(0), zone).astimezone(timezone.utc)
    return begin, finish


async def outcomes_report(
    sessions: SessionFactory, outcomes: OutcomesSettings, zone: ZoneInfo, by: str, start: date, end: date,
    names: dict[str, str] | None = None,
) -> OutcomesReport:
    """`names`: what people read for a key where the database has no name (layer labels,
    channel codes' labels); calendar entries read as their titles."""
    """Tasks done are made touches first (set-based, once each), then the figures."""
    if end < start:
        raise ValueError(f"the range ends ({end}) before it starts ({start})")
    async with sessions() as session, session.begin():
        await sync_task_touches(session, outcomes.scheme)
    begin, finish = local_range(start, end, zone)
    windows = outcomes.window_days()
    async with sessions() as session:
        figures = await outcome_figures(session, by, begin, finish, windows, outcomes.attribution)
        known = dict(names or {})
        if by == "entry":
            known |= await entry_titles(session, [f.key for f in figures])
    rows = [_row(by, f, outcomes, known) for f in figures]
    return OutcomesReport(by, start, end, outcomes.attribution, windows, rows)


def names_for(settings: Settings, by: str) -> dict[str, str]:
    """Layer labels of the outcomes scheme; channel codes as their store or state."""
    if by == "layer" and (scheme := settings.layers.scheme(settings.outcomes.scheme)) is not None:
        return {layer.name: layer.label or layer.name for layer in scheme.layers}
    return {}


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def interval_text(interval: tuple[float, float] | None, as_percent: bool) -> str:
    if interval is None:
        return "—"
    low, high = interval
    return f"[{low:+.1%}, {high:+.1%}]" if as_percent else f"[{low:+.2f}, {high:+.2f}]"
