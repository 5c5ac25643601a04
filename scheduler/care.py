"""The daily care scan (关怀): birthdays on the solar or lunar calendar, membership
anniversaries, configured festivals and the win-back of members gone quiet — per layer a
message from the persona, a task for a person, or both.

Care without strings: the top layer's default is a task for her owner to send flowers or
a cake, with suggested words and no condition attached; others get a warm message. The
scan enqueues; the delivery loop sends at `send_time` and holds care for members who
opted out. Every occasion is acted on once per member per year, whatever reruns and
restarts: outbox key "care:{occasion}:{year}:{member}", task key
"care-task:{occasion}:{year}:{member}".
"""

from __future__ import annotations

import asyncio
import time as clock
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from content_templates.renderer import Renderer
from scheduler.festivals import (
    Festival,
    anniversary_keys,
    birthday_keys,
    festivals_between,
    month_day_number,
    occasion_year,
)
from scheduler.holdout import held_out, in_global_control
from scheduler.six_moments import SixMomentsPlan, SixMomentsReport, run_six_moments
from storage.care import (
    CareMember,
    LayerFilter,
    anniversaries_matching,
    birthdays_matching,
    dormant_members,
    existing_keys,
    layer_members,
)
from storage.engine import SessionFactory, keep_planner_statistics
from storage.outbox import NewOutboxMessage, enqueue
from storage.outcomes import TouchSource, record_holdouts
from storage.tasks import NewTask, create_tasks

Render = Callable[[str, Mapping[str, Any]], str]
TITLES = {"birthday": "生日关怀", "anniversary": "入会周年", "winback": "好久不见"}
# Rendering runs on the event loop: let webhooks in between every this many members.
YIELD_EVERY = 500


@dataclass(frozen=True, slots=True)
class CareRule:
    """What one layer gets: a persona message on the day, a task for her owner (`gift`:
    the task is to send flowers or a cake), for which occasions ("birthday",
    "anniversary", "winback", "festival" for every festival, or "festival-<name>")."""

    message: bool = False
    task: bool = False
    gift: bool = False
    occasions: frozenset[str] = frozenset()
    holdout: float = 0.0  # the share of her layer held out of each occasion, to measure it

    def covers(self, occasion: str) -> bool:
        return occasion in self.occasions or (occasion.startswith("festival-") and "festival" in self.occasions)


TOP_RULE = CareRule(task=True, gift=True, occasions=frozenset({"birthday", "anniversary"}))
OTHER_RULE = CareRule(message=True, occasions=frozenset({"birthday", "winback"}))


@dataclass(frozen=True, slots=True)
class CareTemplates:
    birthday: str = "care/birthday.txt.j2"
    anniversary: str = "care/anniversary.txt.j2"
    festival: str = "care/festival.txt.j2"
    winback: str = "care/winback.txt.j2"
    task: str = "care/staff_gift.txt.j2"  # the staff task's body; the message is its suggested words

    def message(self, occasion: str) -> str:
        return self.festival if occasion.startswith("festival-") else getattr(self, occasion)


@dataclass(frozen=True, slots=True)
class CarePlan:
    """The care settings as plain values (built from the TOML by bot/settings/care_plan.py)."""

    scheme: str = "value"
    top_layer: str | None = None  # the scheme's top layer: `top_rule` unless `rules` names it
    send_time: time = time(10, 0)
    task_days_ahead: int = 3
    winback_days: int = 90
    festivals: tuple[Festival, ...] = ()
    rules: Mapping[str, CareRule] = field(default_factory=dict)  # per layer
    top_rule: CareRule = TOP_RULE
    other_rule: CareRule = OTHER_RULE  # layers not named, and members without a layer
    templates: CareTemplates = CareTemplates()
    persona: Mapping[str, Any] = field(default_factory=dict)
    six_moments: SixMomentsPlan | None = None
    # The brand-wide control group (a share of all members, the same year after year):
    # held out of care too unless `control_gets_care` (care is not marketing).
    global_control: float = 0.0
    control_gets_care: bool = True

    def rule_for(self, layer: str | None) -> CareRule:
        if layer is not None and layer in self.rules:
            return self.rules[layer]
        return self.top_rule if layer is not None and layer == self.top_layer else self.other_rule

    def audience(self, occasion: str, action: str) -> LayerFilter | None:
        """The members an action ("message" | "task") on `occasion` is for, or None."""
        named = set(self.rules) | ({self.top_layer} if self.top_layer else set())

        def wants(rule: CareRule) -> bool:
            return rule.covers(occasion) and getattr(rule, action)

        if wants(self.other_rule):
            return LayerFilter(None, tuple(sorted(n for n in named if not wants(self.rule_for(n)))))
        included = tuple(sorted(n for n in named if wants(self.rule_for(n))))
        return LayerFilter(included) if included else None


@dataclass(frozen=True, slots=True)
class Occurrence:
    member: CareMember
    occasion: str  # birthday | anniversary | festival-<name> | winback
    when: date
    action: str  # message | task
    festival: str | None = None

    @property
    def year(self) -> int:
        return occasion_year(self.when, self.occasion == "birthday" and self.member.calendar == "lunar")


@dataclass
class CareReport:
    day: date
    dry_run: bool
    # occasion → action → how many were (or, in a dry run, would be) enqueued. Actions:
    # "message", "task", and "task_for_message" (she is reachable on WeCom only, where
    # only staff may write: her owner gets the suggested words).
    counts: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    already: int = 0  # found done by an earlier run (dedupe key present)
    unreachable: int = 0  # a message was due, but she has no platform identity
    held_out: int = 0  # chosen not to be sent, to compare against (recorded as held out)
    samples: list[dict[str, Any]] = field(default_factory=list)
    six_moments: SixMomentsReport | None = None
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(sum(actions.values()) for actions in self.counts.values())


async def run_care_scan(
    sessions: SessionFactory,
    config: CarePlan,
    renderer: Renderer,
    zone: ZoneInfo,
    now: datetime,
    *,
    day: date | None = None,
    dry_run: bool = False,
) -> CareReport:
    """The daily care job for `day` (default: today in `zone`), in one transaction:
    messages for today's occasions, tasks for those up to `task_days_ahead` days ahead,
    then the six-moments plans and their tasks. A dry run writes nothing. Then, once the
    day's care is in, the planner's statistics are kept up for tomorrow's."""
    started = clock.perf_counter()
    today = day or now.astimezone(zone).date()
    # Thousands of renders of a handful of templates: each looked up once for this scan.
    render = renderer.bound()
    async with sessions() as session, session.begin():
        report = await scan(session, config, render, zone, today, now, dry_run=dry_run)
        if config.six_moments is not None:
            report.six_moments = await run_six_moments(
                session, config.six_moments, render, {"persona": dict(config.persona)}, today, now,
                dry_run=dry_run,
            )
    report.seconds = clock.perf_counter() - started
    async with sessions() as session:  # on SQLite, the connection whose statements just ran
        await keep_planner_statistics(session)
    return report


def _birthday_days(first: date, last: date) -> dict[tuple[str, int], date]:
    """(calendar kind, birth_md) → the day in [first, last] it falls on."""
    days: dict[tuple[str, int], date] = {}
    for offset in range((last - first).days, -1, -1):  # backwards: the earliest day wins
        day = first + timedelta(days=offset)
        keys = birthday_keys(day)
        for kind, values in (("solar", keys.solar), ("lunar", keys.lunar), ("lunar_leap", keys.lunar_leap)):
            days.update({(kind, md): day for md in values})
    return days


def _birthday_kind(member: CareMember) -> str:
    return "solar" if member.calendar != "lunar" else "lunar_leap" if member.leap else "lunar"


async def occurrences(session: AsyncSession, config: CarePlan, zone: ZoneInfo, today: date) -> list[Occurrence]:
    """Every care occasion of the day: messages for today, tasks due up to N days ahead."""
    return [o async for batch in _batches(session, config, zone, today) for o in batch]


async def _batches(
    session: AsyncSession, config: CarePlan, zone: ZoneInfo, today: date
) -> AsyncIterator[list[Occurrence]]:
    """The day's occasions, one statement's worth at a time: tasks (due today up to N days
    ahead) first, then today's messages, whose members come with their reach."""
    scheme = config.scheme
    for action, end in (("task", today + timedelta(days=config.task_days_ahead)), ("message", today)):
        reach = action == "message"
        if (audience := config.audience("birthday", action)) is not None:
            days = _birthday_days(today, end)
            by_kind = {kind: {md for k, md in days if k == kind} for kind in ("solar", "lunar", "lunar_leap")}
            members = await birthdays_matching(session, scheme, by_kind["solar"], by_kind["lunar"],
                                               by_kind["lunar_leap"], audience, reach=reach)
            yield [Occurrence(m, "birthday", when, action) for m in members
                   if (when := days.get((_birthday_kind(m), (m.birth_month or 0) * 100 + (m.birth_day or 0))))]
        if (audience := config.audience("anniversary", action)) is not None:
            joined = {key: today + timedelta(days=offset) for offset in range((end - today).days, -1, -1)
                      for key in anniversary_keys(today + timedelta(days=offset))}
            members = await anniversaries_matching(session, scheme, joined, end, audience, reach=reach)
            yield [Occurrence(m, "anniversary", when, action) for m in members
                   if m.member_since < (when := joined[month_day_number(m.member_since)])]  # type: ignore[operator, union-attr]
        for festival, when in festivals_between(config.festivals, today, end):
            if (audience := config.audience(festival.occasion, action)) is not None:
                yield [Occurrence(m, festival.occasion, when, action, festival.name)
                       for m in await layer_members(session, scheme, audience, reach=reach)]
        if (audience := config.audience("winback", action)) is not None:
            # Quiet for winback_days full days: her last activity was on the day before.
            quiet_since = datetime.combine(today - timedelta(days=config.winback_days), time(0), zone)
            quiet_since = quiet_since.astimezone(timezone.utc)
            yield [Occurrence(m, "winback", today, action) for m in await dormant_members(
                session, scheme, quiet_since - timedelta(days=1), quiet_since, audience, reach=reach,
            )]


async def scan(
    session: AsyncSession, config: CarePlan, render: Render, zone: ZoneInfo, today: date, now: datetime,
    *, dry_run: bool = False,
) -> CareReport:
    """Find, skip what is done, render and write. While one batch is rendered the next
    statement already runs (SQLite and PostgreSQL work outside Python's lock)."""
    report = CareReport(today, dry_run)
    send_at = datetime.combine(today, config.send_time, zone).astimezone(timezone.utc)
    messages: list[NewOutboxMessage] = []
    tasks: dict[str, NewTask] = {}
    batches = _batches(session, config, zone, today)
    pending = asyncio.ensure_future(anext(batches, None))
    try:
        while (batch := await pending) is not None:
            outgoing: dict[str, Occurrence] = {}
            to_staff: dict[str, tuple[Occurrence, str]] = {}
            held: dict[tuple[str, int], list[int]] = defaultdict(list)
            for o in batch:
                if _held_out(config, o):
                    held[(o.occasion, o.year)].append(o.member.id)
                    continue
                task_key = f"care-task:{o.occasion}:{o.year}:{o.member.id}"
                if o.action == "task" or (o.member.direct is None and o.member.known):
                    if task_key not in tasks:  # a gift task (made first) covers her WeCom words too
                        to_staff[task_key] = (o, "task" if o.action == "task" else "task_for_message")
                elif o.member.direct is not None:
                    outgoing[f"care:{o.occasion}:{o.year}:{o.member.id}"] = o
                else:
                    report.unreachable += 1
            report.held_out += sum(map(len, held.values()))
            if not dry_run:
                for (occasion, year), ids in held.items():
                    await record_holdouts(session, ids, send_at, TouchSource("occasion", occasion),
                                          f"care:{occasion}:{year}", config.scheme)
            done = await existing_keys(session, "outbox", list(outgoing))
            done |= await existing_keys(session, "tasks", list(to_staff))
            report.already += len(done)
            pending = asyncio.ensure_future(anext(batches, None))
            await asyncio.sleep(0)  # let the next statement start before rendering this batch
            for n, (key, o) in enumerate(outgoing.items(), 1):
                if key not in done:
                    messages.append(_message(config, render, key, o, send_at))
                    _count(report, o, "message", messages[-1].recipient, messages[-1].body)
                if n % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # a festival for every member renders for a while
            for n, (key, (o, action)) in enumerate(to_staff.items(), 1):
                if key not in done:
                    tasks[key] = _task(config, render, key, o, action)
                    _count(report, o, action, f"staff:{o.member.owner_staff_id or '-'}", tasks[key].body)
                if n % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
    finally:  # on an error, let the statement under way end before the session goes
        if not pending.done():
            pending.cancel()
            await asyncio.wait([pending])
        await batches.aclose()
    if not dry_run:
        await enqueue(session, messages, now)
        await create_tasks(session, list(tasks.values()), now)
    return report


def _held_out(config: CarePlan, o: Occurrence) -> bool:
    """Held out of this occasion this year (salted by both: never the same members out of
    every birthday), or in the global control group when that group gets no care."""
    if not config.control_gets_care and in_global_control(o.member.id, config.global_control):
        return True
    return held_out(o.member.id, f"occasion:{o.occasion}", o.year, config.rule_for(o.member.layer).holdout)


def _message(config: CarePlan, render: Render, key: str, o: Occurrence, send_at: datetime) -> NewOutboxMessage:
    platform, recipient = o.member.direct_identity  # type: ignore[misc]
    body = render(config.templates.message(o.occasion), _variables(config, o))
    return NewOutboxMessage(dedupe_key=key, platform=platform, recipient=recipient, kind="care", body=body,
                            member_id=o.member.id, not_before=send_at)


def _task(config: CarePlan, render: Render, key: str, o: Occurrence, action: str) -> NewTask:
    """A task for her owner: the gift (top layer), or the words to send on WeCom."""
    variables = _variables(config, o)
    words = render(config.templates.message(o.occasion), variables)
    gift = config.rule_for(o.member.layer).gift and action == "task"
    body = render(config.templates.task, {**variables, "gift": gift, "words": words})
    label = f"{o.festival}问候" if o.festival else TITLES[o.occasion]
    return NewTask(dedupe_key=key, kind="care", title=f"{label}：{o.member.name or o.member.id}（{o.when:%m-%d}）"[:256],
                   due_date=o.when, staff_id=o.member.owner_staff_id, member_id=o.member.id, body=body)


def _variables(config: CarePlan, o: Occurrence) -> dict[str, Any]:
    member = o.member
    years = o.when.year - member.member_since.year if o.occasion == "anniversary" and member.member_since else None
    return {
        "persona": dict(config.persona),
        "member": {"name": member.name},
        "store": {"name": member.store} if member.store else None,
        "occasion": o.occasion if not o.festival else "festival",
        "festival": o.festival,
        "date": o.when,
        "years": years,
        "calendar": member.calendar,
    }


def _count(report: CareReport, o: Occurrence, action: str, to: str, body: str) -> None:
    report.counts[o.occasion][action] += 1
    if report.counts[o.occasion][action] == 1 and len(report.samples) < 8:  # one of each kind
        report.samples.append({"member_id": o.member.id, "occasion": o.occasion, "action": action,
                               "date": o.when, "to": to, "body": " ".join(body.split())[:80]})
