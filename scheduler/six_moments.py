"""Six moments a year (六次互动): for each member of the top layer, six touches about two
months apart, anchored on her birthday and her membership anniversary and filled with the
configured kinds (a festival, a new-season preview, a personal check-in, an exclusive
invitation). Each touch becomes a task for her owner a few days before it is due: a
person makes it, the tool only finds the moment and prepares the words.

`plan_six_moments` is pure; `run_six_moments` plans the members lacking a plan and turns
the touches that come due into staff tasks, once each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import product
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.care_dates import next_anniversary, next_birthday
from scheduler.festivals import Festival, festivals_between, occasion_year
from storage.care import (
    CareMember,
    add_touches,
    due_touches,
    existing_keys,
    link_touches,
    members_needing_plan,
    task_ids,
)
from storage.tasks import NewTask, create_tasks

TOUCHES = 6
YEAR_DAYS = 365
IDEAL_GAP = YEAR_DAYS / TOUCHES  # ~61 days
MIN_GAP, MAX_GAP = 45, 75  # what "about two months apart" allows between two touches
FILLER_KINDS = ("festival", "preview", "check_in", "invitation")
LABELS = {
    "birthday": "生日",
    "anniversary": "入会周年",
    "festival": "节日问候",
    "preview": "新季预览",
    "check_in": "私人问候",
    "invitation": "专属邀请",
}
FESTIVAL_REACH = 20  # days a festival touch may move to fall on the festival itself
PLAN_ROWS_PER_INSERT = 30_000  # a first run plans every top-layer member: bound the memory


@dataclass(frozen=True, slots=True)
class Touch:
    kind: str
    due_date: date
    label: str


def _anchors(start: date, birthday: date | None, anniversary: date | None) -> list[tuple[int, str, str]]:
    found: dict[int, tuple[str, str]] = {}
    for kind, when in (("birthday", birthday), ("anniversary", anniversary)):
        if when is None or not 0 <= (when - start).days < YEAR_DAYS:
            continue  # beyond this plan's year: the next plan anchors on it
        offset = (when - start).days
        if offset in found:  # the same day: one touch for both
            found[offset] = (found[offset][0], f"{found[offset][1]} · {LABELS[kind]}")
        else:
            found[offset] = (kind, LABELS[kind])
    return sorted((offset, kind, label) for offset, (kind, label) in found.items())


def _filler_offsets(anchors: Sequence[int], fillers: int) -> list[int]:
    """Fillers spread over the gaps between the anchors (the year read as a circle): of
    every way to share them out, the one whose sub-gaps stray least from two months."""
    if not anchors:
        return [round(YEAR_DAYS * (i + 0.5) / TOUCHES) for i in range(fillers)]
    gaps = [((anchors[(i + 1) % len(anchors)] - a) % YEAR_DAYS) or YEAR_DAYS for i, a in enumerate(anchors)]

    def badness(counts: tuple[int, ...]) -> tuple[float, float]:
        parts = [g / (k + 1) for g, k in zip(gaps, counts)]
        return max(abs(p - IDEAL_GAP) for p in parts), sum(abs(p - IDEAL_GAP) for p in parts)

    shares = [c for c in product(range(fillers + 1), repeat=len(gaps)) if sum(c) == fillers]
    counts = min(shares, key=badness)
    return [
        (anchor + round(gap * j / (count + 1))) % YEAR_DAYS
        for anchor, gap, count in zip(anchors, gaps, counts)
        for j in range(1, count + 1)
    ]


def _spacing_holds(others: Sequence[int], offset: int) -> bool:
    """Whether a touch at `offset` is 45-75 days from its neighbours (the year a circle)."""
    after = min((o - offset) % YEAR_DAYS for o in others)
    before = min((offset - o) % YEAR_DAYS for o in others)
    return MIN_GAP <= after <= MAX_GAP and MIN_GAP <= before <= MAX_GAP


def plan_six_moments(
    start: date,
    birthday: date | None,
    anniversary: date | None,
    kinds: Sequence[str] = FILLER_KINDS,
    festivals: Sequence[tuple[str, date]] = (),
) -> list[Touch]:
    """Six touches in [start, start + 365 days), in date order: the birthday and the
    anniversary where they fall (fixed), the rest of `kinds` in the largest gaps, so that
    consecutive touches are about two months (45-75 days) apart. A "festival" filler moves
    onto a festival in `festivals` when one is near and the spacing still holds."""
    anchors = _anchors(start, birthday, anniversary)
    offsets = _filler_offsets([a for a, _, _ in anchors], TOUCHES - len(anchors))
    taken = {a for a, _, _ in anchors}
    fillers = sorted(offsets)
    kinds = list(kinds) or ["check_in"]
    assigned: dict[int, tuple[str, str]] = {}
    if "festival" in kinds and festivals:
        choices = sorted(
            (abs(day - offset), offset, day, name)
            for offset in fillers for name, when in festivals
            if abs((day := (when - start).days) - offset) <= FESTIVAL_REACH and 0 <= day < YEAR_DAYS
        )
        for _, offset, moved, name in choices:
            others = [o for o in [*taken, *fillers] if o != offset]
            if moved == offset or (moved not in others and _spacing_holds(others, moved)):
                fillers[fillers.index(offset)] = moved
                assigned[moved] = ("festival", name)
                kinds.remove("festival")
                break
    rest = iter(kinds * TOUCHES)
    for offset in sorted(fillers):
        if offset not in assigned:
            kind = next(rest)
            assigned[offset] = (kind, LABELS.get(kind, kind))
    touches = [(a, kind, label) for a, kind, label in anchors] + [(o, k, lab) for o, (k, lab) in assigned.items()]
    return [Touch(kind, start + timedelta(days=offset), label) for offset, kind, label in sorted(touches)]


# ── The daily job ────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class SixMomentsPlan:
    """The six-moments settings, as plain values (built by bot/settings/care_plan.py)."""

    scheme: str
    layer: str  # the top layer of the scheme
    days_ahead: int = 7
    kinds: tuple[str, ...] = FILLER_KINDS
    template: str = "care/six_moments.txt.j2"
    festivals: tuple[Festival, ...] = ()
    # Anchors the care scan already gives the top layer a task for (its gift task):
    # those touches link to that task instead of making a second one.
    care_task_kinds: frozenset[str] = frozenset()


@dataclass
class SixMomentsReport:
    planned_members: int = 0
    planned_touches: int = 0
    tasks: int = 0
    linked: int = 0  # anchors whose care task (birthday, anniversary) already prompts staff
    samples: list[dict[str, Any]] = field(default_factory=list)


def plan_for(member: CareMember, plan: SixMomentsPlan, today: date,
             festivals: Sequence[tuple[str, date]]) -> list[Touch]:
    birthday = next_birthday(member.birth_month, member.birth_day, member.calendar, member.leap, today)
    anniversary = next_anniversary(member.member_since, today)
    return plan_six_moments(today, birthday, anniversary, plan.kinds, festivals)


async def run_six_moments(
    session: AsyncSession,
    plan: SixMomentsPlan,
    render: Callable[[str, Mapping[str, Any]], str],
    variables: Mapping[str, Any],
    today: date,
    now: datetime,
    *,
    dry_run: bool = False,
) -> SixMomentsReport:
    """Plan members lacking a plan, then a task for each touch due within `days_ahead`
    (once: dedupe "six:{member}:{year}:{slot}"). A birthday or anniversary touch that the
    care scan already prompts (`care_task_kinds`) is linked to that care task, not doubled."""
    report = SixMomentsReport()
    festivals = [(f.name, when) for f, when in festivals_between(plan.festivals, today, today + timedelta(days=364))]
    last = today + timedelta(days=plan.days_ahead)
    rows: list[dict[str, Any]] = []
    due_new = 0  # in a dry run: touches just planned that would come due
    for n, member in enumerate(await members_needing_plan(session, plan.scheme, plan.layer, today), 1):
        if n % 1000 == 0:
            await asyncio.sleep(0)  # a first run plans every top-layer member: let webhooks in
        touches = plan_for(member, plan, today, festivals)
        report.planned_members += 1
        report.planned_touches += len(touches)
        due_new += sum(1 for t in touches if t.due_date <= last and t.kind not in plan.care_task_kinds)
        rows += [{"member_id": member.id, "year": today.year, "slot": slot, "kind": t.kind, "due_date": t.due_date,
                  "label": t.label[:64], "planned_at": now} for slot, t in enumerate(touches, 1)]
        if len(rows) >= PLAN_ROWS_PER_INSERT and not dry_run:
            await add_touches(session, rows)
            rows = []
    if dry_run:  # nothing stored: count the tasks that would come due
        due = await due_touches(session, plan.scheme, plan.layer, today, last)
        report.tasks = sum(1 for t in due if t.kind not in plan.care_task_kinds) + due_new
        return report
    await add_touches(session, rows)
    due = await due_touches(session, plan.scheme, plan.layer, today, last)
    care_keys = {(t.member.id, t.year, t.slot): f"care-task:{t.kind}:{_care_year(t)}:{t.member.id}"
                 for t in due if t.kind in plan.care_task_kinds}
    care_tasks = await task_ids(session, list(care_keys.values()))
    links = [(*key, care_tasks[care_key]) for key, care_key in care_keys.items() if care_key in care_tasks]
    report.linked = len(links)
    tasks: dict[tuple[int, int, int], NewTask] = {}
    for touch in due:
        member = touch.member
        if touch.kind in plan.care_task_kinds:
            continue  # its care task comes task_days_ahead before the day, and is linked then
        body = render(plan.template, {**variables, "member": {"name": member.name}, "store": _store(member),
                                      "kind": touch.kind, "label": touch.label, "date": touch.due_date})
        tasks[(member.id, touch.year, touch.slot)] = NewTask(
            dedupe_key=f"six:{member.id}:{touch.year}:{touch.slot}", kind="six_moments",
            title=f"六次互动·{touch.label}：{member.name or member.id}（{touch.due_date:%m-%d}）"[:256],
            due_date=touch.due_date, staff_id=member.owner_staff_id, member_id=member.id, body=body,
        )
    keys = [t.dedupe_key for t in tasks.values()]
    already = await existing_keys(session, "tasks", keys)
    await create_tasks(session, list(tasks.values()), now)
    report.tasks = len(set(keys) - already)
    created = await task_ids(session, keys)
    links += [(*key, created[task.dedupe_key]) for key, task in tasks.items() if task.dedupe_key in created]
    await link_touches(session, links)
    report.samples = [{"member_id": t.member_id, "kind": t.kind, "due_date": t.due_date, "title": t.title}
                      for t in list(tasks.values())[:3]]
    return report


def _care_year(touch: Any) -> int:
    return occasion_year(touch.due_date, touch.kind == "birthday" and touch.member.calendar == "lunar")


def _store(member: CareMember) -> dict[str, str] | None:
    return {"name": member.store} if member.store else None
