"""Staff: open and overdue work, how the last weeks' tasks went, whom each person looks
after, per staff member and per store; and handing a person's work to a colleague.

Counts come grouped from SQL (storage/staff_stats.py); completion and on-time rates are
the arithmetic of handlers/task_rates.py, the same as `siyu tasks list`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.console.cookies import SESSION
from bot.console.keys import VIEWER, operators_only
from bot.console.render import render
from bot.shared.access import Viewer
from bot.shared.keys import DELIVERY, SESSIONS
from bot.shared.live_config import live
from bot.shared.params import path_id, whole_number
from handlers.staff_changes import hand_over_and_tell
from handlers.task_rates import Rates, TaskFact, rates
from storage.models import Staff, utcnow
from storage.reassign import successor_of
from storage.staff_stats import (
    DueGroup,
    OpenWork,
    Owned,
    StaffEntry,
    due_groups,
    open_work,
    owned_members,
    staff_entries,
)

WINDOW_DAYS = 30  # the rates cover tasks due in the last 30 days, today included
NOTICE = "staff_notice"  # the session key of the notice shown once after a hand-over
NOBODY = "none"  # the form's choice for "leave the work unassigned"
NO_RATES = Rates(0, 0, 0, 0, 0)


def add_routes(console: web.Application) -> None:
    console.router.add_get("/staff", staff_page)
    console.router.add_post("/staff/{id:\\d+}/hand-over", hand_over_work)


# -- the arithmetic ----------------------------------------------------------------------

def _plus(a: Rates, b: Rates, times: int = 1) -> Rates:
    return Rates(a.due + times * b.due, a.done + times * b.done, a.on_time + times * b.on_time,
                 a.skipped + times * b.skipped, a.overdue + times * b.overdue)


def grouped_rates(groups: Iterable[DueGroup], today: date) -> Rates:
    """`rates` over grouped tasks: each group is as many alike tasks (those done on time,
    and the rest), so the counting rules stay the ones `siyu tasks list` uses."""
    total = NO_RATES
    for g in groups:
        for done_on, count in ((g.due, g.on_time), (None, g.count - g.on_time)):
            if count:
                total = _plus(total, rates([TaskFact(g.due, g.status, done_on)], today), count)
    return total


@dataclass(frozen=True, slots=True)
class Figures:
    open: int = 0
    overdue: int = 0
    rates: Rates = NO_RATES
    members: int = 0
    members_left: int = 0

    def __add__(self, other: Figures) -> Figures:
        return Figures(self.open + other.open, self.overdue + other.overdue, _plus(self.rates, other.rates),
                       self.members + other.members, self.members_left + other.members_left)


def figures_by_staff(work: Mapping[int | None, OpenWork], groups: Iterable[DueGroup],
                     owned: Mapping[int | None, Owned], today: date) -> dict[int | None, Figures]:
    """Each staff id's figures; None holds the unassigned tasks and unowned members."""
    by_staff: dict[int | None, list[DueGroup]] = defaultdict(list)
    for g in groups:
        by_staff[g.staff_id].append(g)
    keys = set(work) | set(by_staff) | set(owned)
    return {
        key: Figures(
            work[key].open if key in work else 0, work[key].overdue if key in work else 0,
            grouped_rates(by_staff.get(key, ()), today),
            owned[key].current if key in owned else 0, owned[key].left if key in owned else 0,
        )
        for key in keys
    }


@dataclass(frozen=True, slots=True)
class StoreLine:
    store_id: int | None
    name: str | None  # None: staff with no store
    staff: int  # active staff
    figures: Figures


def store_lines(entries: Sequence[StaffEntry], figures: Mapping[int | None, Figures]) -> list[StoreLine]:
    """Stores in the order of `entries`, each the sum of its staff's figures."""
    names: dict[int | None, str | None] = {}
    active: dict[int | None, int] = defaultdict(int)
    sums: dict[int | None, Figures] = defaultdict(Figures)
    for e in entries:
        names.setdefault(e.store_id, e.store)
        active[e.store_id] += e.active
        sums[e.store_id] = sums[e.store_id] + figures.get(e.id, Figures())
    return [StoreLine(store, names[store], active[store], sums[store]) for store in names]


@dataclass(frozen=True, slots=True)
class HandingOver:
    """The open hand-over form: whose work, to whom by default, and who may take it."""

    leaving: StaffEntry
    successor: int | None  # the store's manager, preselected
    colleagues: list[StaffEntry]  # active staff but her


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


# -- the page ----------------------------------------------------------------------------

async def staff_page(request: web.Request, problem: str | None = None, status: int = 200,
                     handing_id: int | None = None) -> web.Response:
    """The page; `?hand_over=<staff id>` (or `handing_id`) opens the hand-over form for her.
    A store manager sees her store's staff (hand-overs stay with operators)."""
    viewer: Viewer = request[VIEWER]
    if not viewer.is_operator and viewer.store_id is None:
        operators_only(request)
    zone = live(request).settings.zone
    today = datetime.now(zone).date()
    asked = request.query.get("hand_over", "")
    handing_id = handing_id if handing_id is not None else whole_number(asked)
    async with request.config_dict[SESSIONS]() as session:
        entries = await staff_entries(session)
        if not viewer.is_operator:
            entries = [e for e in entries if e.store_id == viewer.store_id]
            handing_id = None
        figures = figures_by_staff(
            await open_work(session, today),
            await due_groups(session, today - timedelta(days=WINDOW_DAYS - 1), today, zone),
            await owned_members(session),
            today,
        )
        handing = await _handing_over(session, entries, handing_id)
    if not viewer.is_operator:  # her store's figures only
        figures = {e.id: figures[e.id] for e in entries if e.id in figures}
    session_data = request[SESSION]
    notice = session_data.pop(NOTICE, None)
    if notice is not None:
        session_data.changed = True  # the notice shows once
    return render(
        request, "staff.html", http_status=status, entries=entries, figures=figures, no_figures=Figures(),
        stores=store_lines(entries, figures), unassigned=figures.get(None, Figures()),
        total=sum(figures.values(), Figures()), window=WINDOW_DAYS, percent=percent, notice=notice,
        problem=problem, handing=handing, nobody=NOBODY, may_hand_over=viewer.is_operator,
    )


async def _handing_over(session: AsyncSession, entries: Sequence[StaffEntry], staff_id: int | None) -> HandingOver | None:
    leaving = next((e for e in entries if e.id == staff_id), None)
    staff = await session.get(Staff, leaving.id) if leaving is not None else None
    if leaving is None or staff is None:
        return None
    successor = await successor_of(session, staff)
    return HandingOver(leaving, successor.id if successor else None, [e for e in entries if e.active and e.id != leaving.id])


async def hand_over_work(request: web.Request) -> web.Response:
    """Move a person's open tasks and members to a colleague (or leave them unassigned),
    and mark her inactive. Tasks she closed stay hers: history is not rewritten."""
    operators_only(request)
    form = await request.post()
    chosen = str(form.get("to", "")).strip()
    async with request.config_dict[SESSIONS]() as session, session.begin():
        leaving = await session.get(Staff, path_id(request.match_info["id"]))
        if leaving is None:
            raise web.HTTPNotFound(text="no such staff member / 没有这位店员")
        to, problem = await _receiver(session, leaving, chosen)
        if problem is None:
            platform = live(request).handlers.staff_platform_for("wecom")
            done = await hand_over_and_tell(session, live(request).renderer, leaving, to, platform, utcnow())
            moved = done.moved
            notice = {"from": leaving.name, "to": to.name if to else None, "tasks": moved.tasks, "members": moved.members}
    if problem is not None:
        return await staff_page(request, problem=problem, status=400, handing_id=leaving.id)
    if done.prompt is not None and DELIVERY in request.config_dict:
        request.config_dict[DELIVERY].wake()  # the receiver hears of it now, not at the next poll
    request[SESSION][NOTICE] = notice
    raise web.HTTPFound("/admin/staff")


async def _receiver(session: AsyncSession, leaving: Staff, chosen: str) -> tuple[Staff | None, str | None]:
    """Whom the work goes to (None: unassigned), or what is wrong with the choice. No
    choice at all means the default: the store's manager."""
    if chosen == NOBODY:
        return None, None
    if not chosen:
        to = await successor_of(session, leaving)
        return (to, None) if to is not None else (None, "这家门店没有在职店长，请选择交接给谁")
    to = await session.get(Staff, number) if (number := whole_number(chosen)) is not None else None
    if to is None or not to.active or to.id == leaving.id:
        return None, "请选择一位在职的其他同事"
    return to, None
