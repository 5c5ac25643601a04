"""The calendar's month grid, as plain functions: which month is asked for, its weeks
(Monday first), and what fires on each day from the preview's counts."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from scheduler.calendar import EntrySpec
from scheduler.calendar_simulation import Outcome

_MONTH = re.compile(r"(\d{4})-(\d{1,2})")
HELD_REASONS = {  # the preview's reasons for holding members back, as operators read them
    "opted_out": "已退订", "no_wecom_id": "没有企业微信", "no_oa_id": "没有公众号", "no_owner": "没有归属店员",
    "in_no_group": "不在客户群", "weekly_cap": "每周上限",
}
CHANNEL_LABELS = {
    "wecom_mass": "企业微信群发", "wecom_group_mass": "客户群群发", "wecom_moments": "客户朋友圈", "kf": "微信客服", "oa": "公众号",
    "staff_task": "店员发布任务",
}


def month_of(text: str | None, today: date) -> date:
    """The first day of the month asked for ("2026-12"), or of this month."""
    if text and (match := _MONTH.fullmatch(text.strip())):
        year, month = int(match.group(1)), int(match.group(2))
        if 1 <= month <= 12 and 1900 <= year <= 9999:
            return date(year, month, 1)
    return today.replace(day=1)


def shift(first: date, months: int) -> date:
    """The first day of the month `months` away."""
    n = first.year * 12 + first.month - 1 + months
    return date(n // 12, n % 12 + 1, 1)


def days_in(first: date) -> int:
    return calendar.monthrange(first.year, first.month)[1]


def weeks(first: date) -> list[list[date]]:
    """The weeks that hold the month, Monday to Sunday (days of the months around it too)."""
    return calendar.Calendar(firstweekday=0).monthdatescalendar(first.year, first.month)


@dataclass(frozen=True, slots=True)
class Firing:
    """One occurrence on the grid."""

    entry: EntrySpec
    at: datetime  # in the brand's zone
    paused: bool = False
    audience: int = 0
    reached: int = 0
    held: Mapping[str, int] = field(default_factory=dict)
    deferred: int = 0


def by_day(outcomes: Iterable[Outcome], paused: Iterable[tuple[EntrySpec, datetime]]) -> dict[date, list[Firing]]:
    """Each day's firings in time order: the preview's outcomes, and the occurrences of
    paused entries (shown, not counted: they send nothing)."""
    found: dict[date, list[Firing]] = {}
    for o in outcomes:
        found.setdefault(o.at.date(), []).append(Firing(o.entry, o.at, False, o.audience, o.reached, o.held, o.deferred))
    for entry, at in paused:
        found.setdefault(at.date(), []).append(Firing(entry, at, paused=True))
    for firings in found.values():
        firings.sort(key=lambda f: (f.at, f.entry.id))
    return found


def held_summary(held: Mapping[str, int], labels: Mapping[str, str] = HELD_REASONS) -> list[tuple[str, int]]:
    """Held-back members by reason, most first, with the reason's label."""
    return [(labels.get(reason, reason), count) for reason, count in sorted(held.items(), key=lambda p: (-p[1], p[0]))]


def fires_per_entry(days: Mapping[date, Sequence[Firing]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for firings in days.values():
        for firing in firings:
            counts[firing.entry.id] = counts.get(firing.entry.id, 0) + 1
    return counts
