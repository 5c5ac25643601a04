"""The overview (operators only): how the private domain is doing at a glance.

The layer pyramid of a scheme with its movement over the week, each layer's engagement as
charts, today's care, how staff get their tasks done, and how delivery is going. It asks
the questions `siyu layers show`, `siyu care run --dry-run` and `siyu tasks list` ask,
through the same functions, and the delivery questions of storage/overview.py.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.console.charts import MUTED, Chart, line_chart
from bot.console.i18n import translator
from bot.console.keys import LANGUAGE, VIEWER, operators_only
from bot.console.render import render
from bot.console.tasks_page import KIND_LABELS
from bot.settings.care_plan import care_plan
from bot.settings.model import Settings
from bot.shared.access import Viewer
from bot.shared.keys import SESSIONS
from bot.shared.live_config import live
from bot.shared.layer_summaries import change, ordered_layers, week_summary
from handlers.task_rates import Rates
from scheduler.care import Occurrence, occurrences
from storage.care import existing_keys
from storage.conversations import open_handoffs, unassigned_handoffs
from storage.engagement import NO_LAYER, engagement_series, layer_counts
from storage.models import EngagementDay, Store, utcnow
from storage.overview import DueTask, TaskTally, delivery_health, open_tasks_due, store_layer_counts, task_tallies

WEEK = 7
DAY_CHOICES = (7, 30, 90)
DEFAULT_DAYS = 30
TASK_DAYS = 30  # the window of the completion rates
ROWS = 20  # care rows and due tasks listed
CARE_TASK_KINDS = ("care", "six_moments")
# (EngagementDay counter, chart title), in the order the charts appear.
CHARTED = (("members", "会员数"), ("active", "活跃会员"), ("messages_in", "收到的消息"))
OCCASIONS = {"birthday": "生日", "anniversary": "入会周年", "winback": "沉睡唤回"}
# What the care scan does for an occasion: the keys are scheduler/care.py's actions.
CARE_ACTIONS = {"message": "发消息", "task": "店员任务", "task_for_message": "店员代发", "unreachable": "无法触达"}


def add_routes(console: web.Application) -> None:
    console.router.add_get("/overview", overview)


async def overview(request: web.Request) -> web.Response:
    """GET /admin/overview?scheme=<name>&days=7|30|90: the pyramid and charts of one
    scheme (default the first), the rest for the whole brand."""
    viewer: Viewer = request[VIEWER]
    if not viewer.is_operator:
        if viewer.store_id is None:
            operators_only(request)  # plain staff: their own tasks are their page
        return await store_overview(request, viewer)
    settings: Settings = live(request).settings
    zone = settings.zone
    schemes = settings.layers.schemes
    scheme = next((s for s in schemes if s.name == request.query.get("scheme")), schemes[0] if schemes else None)
    days = int(request.query["days"]) if request.query.get("days") in {str(d) for d in DAY_CHOICES} else DEFAULT_DAYS
    now = utcnow()
    today = now.astimezone(zone).date()
    chart_first = today - timedelta(days=days - 1)
    first = min(chart_first, today - timedelta(days=2 * WEEK - 1))
    no_layer = translator(request.get(LANGUAGE, "zh"))("未分层")
    async with request.config_dict[SESSIONS]() as session:
        counts = await layer_counts(session, scheme.name) if scheme else {}
        series = await engagement_series(session, scheme.name, first, today) if scheme else []
        care = await care_queue(session, settings, today)
        tallies = await task_tallies(session, today - timedelta(days=TASK_DAYS - 1), today, zone)
        unassigned = await unassigned_handoffs(session)
        health = await delivery_health(session, now, failed_since=now - timedelta(days=1),
                                       held_since=now - timedelta(days=WEEK), sent_since=now - timedelta(days=1))
    order = scheme.scheme().order() if scheme else []
    labels = (scheme.layer_labels() if scheme else {}) | {NO_LAYER: no_layer}
    rows, compared = pyramid(order, counts, series, today)
    stores, overall = store_rates(tallies)
    return render(
        request, "overview.html",
        schemes=schemes, scheme=scheme, days=days, day_choices=DAY_CHOICES, today=today,
        labels=labels, pyramid=rows, compared=compared, total=sum(counts.values()),
        assigned=any(layer != NO_LAYER for layer in counts),
        charts=charts(order, labels, [d for d in series if d.day >= chart_first], chart_first, today),
        care=care, care_labels=_labels_of(settings, care.scheme),
        occasions=OCCASIONS, care_actions=CARE_ACTIONS, task_kinds=KIND_LABELS,
        stores=stores, overall=overall, task_days=TASK_DAYS,
        health=health, shorten=shorten, local=lambda moment: local(moment, zone),
        unassigned=unassigned, layers_cron=settings.layers.recompute_cron, snapshot_cron=settings.layers.engagement_cron,
    )


async def store_overview(request: web.Request, viewer: Viewer) -> web.Response:
    """A store manager's overview: her store's members by layer, its staff's task rates
    and its open hand-offs. Brand-wide figures (engagement, care, delivery) are operators'."""
    assert viewer.store_id is not None
    settings: Settings = live(request).settings
    zone = settings.zone
    schemes = settings.layers.schemes
    scheme = next((s for s in schemes if s.name == request.query.get("scheme")), schemes[0] if schemes else None)
    today = utcnow().astimezone(zone).date()
    no_layer = translator(request.get(LANGUAGE, "zh"))("未分层")
    async with request.config_dict[SESSIONS]() as session:
        store = await session.get(Store, viewer.store_id)
        counts = await store_layer_counts(session, scheme.name, viewer.store_id) if scheme else {}
        tallies = [t for t in await task_tallies(session, today - timedelta(days=TASK_DAYS - 1), today, zone)
                   if t.store_id == viewer.store_id]
        handoffs = await open_handoffs(session, viewer.staff_id, viewer.store_id)
    order = scheme.scheme().order() if scheme else []
    labels = (scheme.layer_labels() if scheme else {}) | {NO_LAYER: no_layer}
    rows, _ = pyramid(order, counts, [], today)
    _, overall = store_rates(tallies)
    return render(request, "store_overview.html", store=store, schemes=schemes, scheme=scheme, labels=labels,
                  pyramid=rows, total=sum(counts.values()), overall=overall, task_days=TASK_DAYS,
                  handoffs=handoffs, percent=lambda v: "—" if v is None else f"{v:.0%}")


# -- the pyramid ------------------------------------------------------------------------

def _labels_of(settings: Settings, name: str) -> dict[str, str]:
    scheme = next((s for s in settings.layers.schemes if s.name == name), None)
    return scheme.layer_labels() if scheme else {}


@dataclass(frozen=True, slots=True)
class LayerRow:
    layer: str
    members: int
    share: float  # % of all current members
    width: float  # % of the largest layer: the bar
    before: int | None  # members in the snapshot a week ago; None without one
    change: int | None
    active: float | None  # active members a day, the last 7 days
    active_change: float | None  # against the 7 days before


def pyramid(
    order: Sequence[str], counts: Mapping[str, int], series: Sequence[EngagementDay], today: date
) -> tuple[list[LayerRow], date | None]:
    """Each layer now and a week ago, top first. "A week ago" is the snapshot of the day 7
    days back, or the latest before it within the week before; its day comes back too."""
    week_ago, this_first = today - timedelta(days=WEEK), today - timedelta(days=WEEK - 1)
    previous_first = this_first - timedelta(days=WEEK)
    compared = max((d.day for d in series if previous_first <= d.day <= week_ago), default=None)
    before = {d.layer: d.members for d in series if d.day == compared}
    this_days = len({d.day for d in series if d.day >= this_first})
    previous_days = len({d.day for d in series if previous_first <= d.day < this_first})
    total, largest = sum(counts.values()), max(counts.values(), default=0)
    rows = []
    for layer in ordered_layers(order, [*counts, *before]):
        mine = [d for d in series if d.layer == layer]
        this = week_summary([d for d in mine if d.day >= this_first], this_days)["active_per_day"]
        previous = week_summary([d for d in mine if previous_first <= d.day < this_first], previous_days)
        members = counts.get(layer, 0)
        prior = before.get(layer, 0) if compared else None
        rows.append(LayerRow(
            layer, members, round(100 * members / total, 1) if total else 0.0,
            round(100 * members / largest, 1) if largest else 0.0,
            prior, None if prior is None else members - prior,
            this, change(this, previous["active_per_day"]),
        ))
    return rows, compared


def charts(
    order: Sequence[str], labels: Mapping[str, str], series: Sequence[EngagementDay], first: date, last: date
) -> list[tuple[str, str, Chart]]:
    """(counter, title, chart) per charted counter: a line per layer, a gap on days no snapshot ran
    (a layer missing from a day that has a snapshot had nothing to count: zero)."""
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    ran = {d.day for d in series}
    found = {(d.day, d.layer): d for d in series}
    present = {d.layer for d in series}
    layers = [layer for layer in ordered_layers(order, list(present)) if layer in present]  # no flat empty lines
    colors = {labels.get(NO_LAYER, NO_LAYER): MUTED}
    made = []
    for counter, title in CHARTED:
        lines = {
            labels.get(layer, layer): [
                float(getattr(found[day, layer], counter)) if (day, layer) in found else 0.0 if day in ran else None
                for day in days
            ]
            for layer in layers
        }
        made.append((counter, title, line_chart(days, lines, colors=colors)))
    return made


# -- today's care -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CareRow:
    member_id: int
    member: str | None
    occasion: str
    layer: str | None
    action: str  # a key of CARE_ACTIONS
    when: date
    done: bool  # the scan already queued or created it


@dataclass
class CareQueue:
    scheme: str = ""
    days_ahead: int = 0  # tasks are made this many days before their occasion
    problem: str | None = None
    counts: dict[str, Counter[str]] = field(default_factory=dict)  # occasion → action (and "done") → n
    rows: list[CareRow] = field(default_factory=list)
    tasks_due: dict[str, int] = field(default_factory=dict)  # open care tasks due today, by kind
    task_rows: list[DueTask] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(n for c in self.counts.values() for a, n in c.items() if a != "done")


def care_keys(found: Iterable[Occurrence]) -> dict[str, tuple[Occurrence, str]]:
    """Dedupe key → (occasion, action) as the care scan decides them (scheduler/care.py's
    `scan`): a task for her owner, a message when she is reachable directly, the words
    for her owner when she is on WeCom only, else unreachable. Gift tasks come first in
    `found` and cover the WeCom words of the same occasion."""
    planned: dict[str, tuple[Occurrence, str]] = {}
    for o in found:
        task_key = f"care-task:{o.occasion}:{o.year}:{o.member.id}"
        if o.action == "task" or (o.member.direct is None and o.member.known):
            planned.setdefault(task_key, (o, "task" if o.action == "task" else "task_for_message"))
        elif o.member.direct is not None:
            planned.setdefault(f"care:{o.occasion}:{o.year}:{o.member.id}", (o, "message"))
        else:
            planned.setdefault(f"unreachable:{o.occasion}:{o.year}:{o.member.id}", (o, "unreachable"))
    return planned


async def care_queue(session: AsyncSession, settings: Settings, today: date) -> CareQueue:
    """What the daily care scan does today (whether it ran yet or not) and the care
    tasks due today that are still open."""
    try:
        plan = care_plan(settings)
    except ValueError as error:
        return CareQueue(settings.care.scheme, problem=str(error))  # type: ignore[attr-defined]
    planned = care_keys(await occurrences(session, plan, settings.zone, today))
    done = await existing_keys(session, "outbox", [k for k in planned if k.startswith("care:")])
    done |= await existing_keys(session, "tasks", [k for k in planned if k.startswith("care-task:")])
    queue = CareQueue(plan.scheme, plan.task_days_ahead)
    for key, (o, action) in planned.items():
        tally = queue.counts.setdefault(o.occasion, Counter())
        tally[action] += 1
        tally["done"] += key in done
    ordered = sorted(planned.items(), key=lambda item: (item[1][0].when, item[1][0].occasion, item[1][0].member.id))
    queue.rows = [CareRow(o.member.id, o.member.name, o.occasion, o.member.layer, action, o.when, key in done)
                  for key, (o, action) in ordered[:ROWS]]
    queue.tasks_due, queue.task_rows = await open_tasks_due(session, today, CARE_TASK_KINDS, plan.scheme, ROWS)
    return queue


# -- staff tasks and delivery -----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StoreRates:
    store_id: int | None
    name: str | None
    code: str | None
    rates: Rates


def store_rates(tallies: Iterable[TaskTally]) -> tuple[list[StoreRates], Rates]:
    """Rates per store (by store code; tasks of no store last) and over all, counted as
    handlers.task_rates counts them: skipped ones complete, open ones late after their day."""
    grouped: dict[tuple[int | None, str | None, str | None], list[TaskTally]] = defaultdict(list)
    for t in tallies:
        grouped[t.store_id, t.store, t.store_code].append(t)
    stores = [StoreRates(*key, _rates(group)) for key, group in grouped.items()]
    stores.sort(key=lambda s: (s.store_id is None, s.code or ""))
    return stores, _rates([t for group in grouped.values() for t in group])


def _rates(tallies: Sequence[TaskTally]) -> Rates:
    return Rates(
        due=sum(t.count for t in tallies),
        done=sum(t.count for t in tallies if t.status == "done"),
        on_time=sum(t.on_time for t in tallies),
        skipped=sum(t.count for t in tallies if t.status == "skipped"),
        overdue=sum(t.count for t in tallies if t.status == "open" and t.overdue),
    )


def shorten(text: str | None, limit: int = 80) -> str:
    """An error or reason on one line, cut at `limit` characters."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[:limit - 1].rstrip() + "…"


def local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    return moment.astimezone(zone) if moment is not None else None

