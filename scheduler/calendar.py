"""The content calendar, as pure logic: entries read from TOML and checked whole, written
back, and expanded into occurrences (the preview's delivery simulation is in
`scheduler.calendar_simulation`). No I/O here.

Times: a cron line and a one-off `at` are wall-clock times in the brand's zone. A wall
time that does not exist (clocks jump forward) fires at the end of the jump; one that
happens twice (clocks fall back) fires once, the first time.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from content_templates.renderer import Renderer, RenderError
from scheduler import moments
from scheduler.cron import cron_problem
from scheduler.mass_attachments import MassAttachments
from scheduler.mass_attachments import parse as parse_mass_attachments
from storage.audiences import AUDIENCE_LISTS, LIFECYCLE, Audience
from storage.models import CalendarEntry

CHANNELS = ("wecom_mass", "wecom_group_mass", "wecom_moments", "kf", "oa", "staff_task")
MEMBER_MARKETING = frozenset({"wecom_mass", "kf", "oa"})  # reach members one by one: opt-out, quiet hours, caps
ONE_TEXT = frozenset({"wecom_mass", "wecom_group_mass", "wecom_moments", "staff_task"})  # one text for many: no member name
ENTRY_KEYS = ("id", "cron", "at", "audience", "template", "channel", "title", "paused", "images", "link", "holdout",
              "attachments")
EMPTY_AUDIENCE = 'audience is empty: say who (e.g. layers = ["super"]) or write audience = { everyone = true }'
_ID = re.compile(r"[^\s:]{1,64}")
_AT = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})")


@dataclass(frozen=True, slots=True)
class EntrySpec:
    id: str
    template: str
    channel: str
    audience: Audience
    cron: str | None = None
    at: datetime | None = None  # aware, UTC
    title: str = ""
    paused: bool = False
    # Running state, not content (never in a file): when it was last resumed.
    resumed_at: datetime | None = field(default=None, compare=False)
    images: tuple[str, ...] = ()  # a Moments post's image files (in [calendar] media_dir)
    link: moments.MomentLink | None = None  # ...or its one link
    # The share of the audience held out of each occurrence (never sent, recorded as held
    # out) to measure what the entry brings; drawn per member and occurrence.
    holdout: float = 0.0
    mass: MassAttachments = MassAttachments()  # a mass send's link, images and mini-program

    def row(self) -> CalendarEntry:
        attachments = moments.attachments_json(self.images, self.link)
        if self.mass:
            attachments["mass"] = self.mass.to_json()
        return CalendarEntry(id=self.id, cron=self.cron, at=self.at, audience=self.audience.to_json(),
                             template=self.template, channel=self.channel, title=self.title, paused=self.paused,
                             attachments=json.dumps(attachments, ensure_ascii=False), holdout=self.holdout)

    @classmethod
    def of(cls, row: CalendarEntry) -> EntrySpec:
        stored = json.loads(row.attachments or "{}")
        images, link = moments.attachments_of(stored)
        return cls(row.id, row.template, row.channel, Audience.from_json(row.audience), row.cron,
                   row.at.astimezone(UTC) if row.at else None, row.title, row.paused,
                   row.resumed_at.astimezone(UTC) if row.resumed_at else None, images, link, row.holdout or 0.0,
                   MassAttachments.of_json(stored.get("mass")))


@dataclass(frozen=True, slots=True)
class CalendarContext:
    """What checking an entry needs from the configuration."""

    zone: ZoneInfo
    schemes: Mapping[str, Sequence[str]]  # scheme name → its layer names
    renderer: Renderer
    persona: Mapping[str, Any]
    # Tags an audience may name besides those in the database (tag rules, channels,
    # layers.known_tags): a tag no one could ever have is a typo.
    known_tags: frozenset[str] = frozenset()
    media_dir: Path = Path("media")  # where a Moments post's image files are


def variables(persona: Mapping[str, Any], member_name: str | None, store_name: str | None) -> dict[str, Any]:
    """What a calendar template may use: persona, member {name}, store {name} or None."""
    return {"persona": persona, "member": {"name": member_name},
            "store": {"name": store_name} if store_name else None}


# -- reading and checking --------------------------------------------------------------

def parse_calendar(text: str, where: str, context: CalendarContext) -> tuple[list[EntrySpec], list[str]]:
    """Every entry of a calendar file, or every problem in it as `file: entries[n] (id "x"): what`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return [], [f"{where}: not valid TOML: {error}"]
    problems = [f"{where}: {key}: unknown key (a calendar file holds [[entries]] only)" for key in raw if key != "entries"]
    items = raw.get("entries", [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        return [], [*problems, f"{where}: entries: must be [[entries]] tables"]
    entries: list[EntrySpec] = []
    first: dict[str, int] = {}
    for n, item in enumerate(items):
        entry_id = item.get("id")
        label = f'entries[{n}] (id "{entry_id}")' if isinstance(entry_id, str) else f"entries[{n}]"
        entry, found = parse_entry(item, context)
        if isinstance(entry_id, str) and entry_id in first:
            found.append(f"id used twice (also entries[{first[entry_id]}])")
        elif isinstance(entry_id, str):
            first[entry_id] = n
        problems.extend(f"{where}: {label}: {problem}" for problem in found)
        if entry is not None:
            entries.append(entry)
    return ([], problems) if problems else (entries, [])


def parse_entry(item: Mapping[str, Any], context: CalendarContext) -> tuple[EntrySpec | None, list[str]]:
    problems = [f"{key}: unknown key (known: {', '.join(ENTRY_KEYS)})" for key in item if key not in ENTRY_KEYS]
    entry_id = item.get("id")
    if not isinstance(entry_id, str) or not _ID.fullmatch(entry_id):
        problems.append("id: required: up to 64 characters, no spaces or colons")
    cron, at_value = item.get("cron"), item.get("at")
    at: datetime | None = None
    if (cron is None) == (at_value is None):
        problems.append('say when with either cron = "0 10 * * fri" (recurring) or at = "2026-12-24 19:00" (once), not '
                        + ("both" if cron is not None else "neither"))
    if cron is not None:
        if not isinstance(cron, str) or len(cron) > 64:
            problems.append("cron: must be a crontab line (minute hour day month weekday)")
        elif problem := cron_problem(cron, context.zone):
            problems.append(f"cron: {problem}")
    if at_value is not None:
        at, problem = parse_at(at_value, context.zone)
        if problem:
            problems.append(f"at: {problem}")
    channel = item.get("channel")
    if channel not in CHANNELS:
        problems.append(f"channel: {'unknown channel ' + json.dumps(channel, ensure_ascii=False) if channel else 'required'}"
                        f" (one of: {', '.join(CHANNELS)})")
    title, paused = item.get("title", ""), item.get("paused", False)
    if not isinstance(title, str) or len(title) > 128:
        problems.append("title: must be text of at most 128 characters")
    if not isinstance(paused, bool):
        problems.append("paused: must be true or false")
    holdout = item.get("holdout", 0)
    if isinstance(holdout, bool) or not isinstance(holdout, int | float) or not 0 <= holdout <= 0.5:
        problems.append("holdout: must be a share from 0 to 0.5 (e.g. 0.1 holds out 10 %)")
        holdout = 0
    template = item.get("template")
    if not isinstance(template, str) or not template or len(template) > 128:
        problems.append("template: required: a template name such as calendar/new_season.txt.j2")
    else:
        problems.extend(f"template: {p}" for p in template_problems(template, str(channel), context))
    audience, found = parse_audience(item.get("audience"), context)
    problems.extend(found)
    if audience is not None and channel == moments.CHANNEL:
        problems.extend(moments.audience_problems(audience))
    images, link, found = moments.parse_attachments(item, str(channel))
    problems.extend(found)
    mass, found = parse_mass_attachments(item, str(channel))
    problems.extend(found)
    if problems or audience is None:
        return None, problems
    return EntrySpec(str(entry_id), str(template), str(channel), audience, cron, at, title, paused,
                     images=images, link=link, holdout=float(holdout), mass=mass), []


def template_problems(template: str, channel: str, context: CalendarContext) -> list[str]:
    """Render with a sample member and store, and with neither (a member without a name,
    or one text for many)."""
    try:
        context.renderer.render(template, variables(context.persona, "王芳", "示例门店"))
        text = context.renderer.render(template, variables(context.persona, None, None))
    except RenderError as error:
        return [str(error)]
    if "None" in text and channel in ONE_TEXT:
        return ["prints member.name, but this channel sends one text to many members: leave the name out"]
    if "None" in text:
        return ['prints "None" for a member without a name: write {{ member.name or "你好" }} or test it with {% if %}']
    return moments.text_problems(text) if channel == moments.CHANNEL else []


def name_problems(entry: EntrySpec, unknown_stores: Container[str], unknown_tags: Container[str],
                  unknown_segments: Container[str] = ()) -> list[str]:
    """An entry's store codes and tags the database (and, for tags, the configuration)
    does not know: the part of checking an entry that needs the database's answer."""
    audience = entry.audience
    problems = [f'audience.stores: unknown store code "{code}"' for code in audience.stores if code in unknown_stores]
    for key in ("tags", "exclude_tags"):
        problems.extend(f'audience.{key}: unknown tag "{tag}" (no tag of that name yet, and no tag rule, channel or '
                        "layers.known_tags gives it)" for tag in getattr(audience, key) if tag in unknown_tags)
    if audience.segment and audience.segment in unknown_segments:
        problems.append(f'audience.segment: no segment is named "{audience.segment}" (save it on the members page first)')
    return problems


def parse_at(value: Any, zone: ZoneInfo) -> tuple[datetime | None, str | None]:
    """A one-off time: "YYYY-MM-DD HH:MM" (or a TOML date-time) in `zone`, to UTC."""
    if isinstance(value, datetime):
        wall = value
    elif isinstance(value, str) and (match := _AT.fullmatch(value.strip())):
        try:
            wall = datetime(*map(int, match.groups()))
        except ValueError as error:
            return None, f"{value!r} is not a date and time ({error})"
    else:
        return None, 'must be a local date and time like "2026-12-24 19:00"'
    if wall.second or wall.microsecond:
        return None, "give hours and minutes, without seconds"
    if wall.tzinfo is not None:
        return wall.astimezone(UTC), None
    instant = to_instant(wall, zone)
    if instant.astimezone(zone).replace(tzinfo=None) != wall:
        return None, f"{wall:%Y-%m-%d %H:%M} does not exist in {zone.key} (the clocks jump over it)"
    return instant, None


def parse_audience(value: Any, context: CalendarContext) -> tuple[Audience | None, list[str]]:
    if value is None or value == {}:
        return None, [EMPTY_AUDIENCE]
    if not isinstance(value, dict):
        return None, ['audience: must be a table, e.g. audience = { layers = ["super"] }']
    known = ("scheme", "everyone", "segment", *AUDIENCE_LISTS)
    problems = [f"audience.{key}: unknown key (known: {', '.join(known)})" for key in value if key not in known]
    lists: dict[str, tuple[str, ...]] = {}
    for key in AUDIENCE_LISTS:
        items = value.get(key, [])
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            problems.append(f'audience.{key}: must be a list of names, e.g. ["a", "b"]')
            items = []
        lists[key] = tuple(items)
    everyone, scheme = value.get("everyone", False), value.get("scheme", "value")
    segment = value.get("segment", "")
    if not isinstance(segment, str) or len(segment) > 64:
        problems.append('audience.segment: must be the name of a segment saved on the members page, e.g. "本月沉睡高价值"')
        segment = ""
    if not isinstance(everyone, bool):
        problems.append("audience.everyone: must be true or false")
    elif everyone and (named := [k for k in ("layers", "lifecycle", "tags", "stores", "segment")
                                 if (lists[k] if k in lists else segment)]):
        problems.append(f"audience: everyone = true leaves no room for {', '.join(named)} (exclude_tags may stay)")
    if not isinstance(scheme, str) or scheme not in context.schemes:
        problems.append(f"audience.scheme: unknown scheme {json.dumps(scheme, ensure_ascii=False)} "
                        f"(configured: {', '.join(context.schemes)})")
    elif "scheme" in value and not lists["layers"]:
        problems.append(f'audience.scheme: say which layers of "{scheme}" (layers = [...])')
    else:
        problems.extend(_unknown_layers("layers", scheme, lists["layers"], context))
    if lists["lifecycle"]:
        if LIFECYCLE not in context.schemes:
            problems.append(f'audience.lifecycle: no "{LIFECYCLE}" scheme is configured (layers.schemes)')
        else:
            problems.extend(_unknown_layers("lifecycle", LIFECYCLE, lists["lifecycle"], context))
    audience = Audience(scheme=str(scheme), everyone=everyone is True, segment=segment.strip(), **lists)
    if not problems and audience.empty:
        problems.append(EMPTY_AUDIENCE)
    return (None if problems else audience), problems


def _unknown_layers(key: str, scheme: str, layers: Iterable[str], context: CalendarContext) -> list[str]:
    names = list(dict.fromkeys(context.schemes[scheme]))
    return [f'audience.{key}: unknown layer "{layer}" in scheme "{scheme}" (its layers: {", ".join(names)})'
            for layer in layers if layer not in names]


# -- writing back ----------------------------------------------------------------------

def _text(value: str) -> str:
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")  # a TOML basic string


def _inline(values: Mapping[str, Any]) -> str:
    def one(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return "[" + ", ".join(_text(v) for v in value) + "]"
        if isinstance(value, dict):
            return _inline(value)
        return _text(str(value))
    return "{ " + ", ".join(f"{key} = {one(value)}" for key, value in values.items()) + " }" if values else "{}"


def calendar_toml(entries: Sequence[EntrySpec], zone: ZoneInfo) -> str:
    """The calendar as a file `siyu calendar load` reads back to the same entries."""
    lines = [f"# The content calendar (times in {zone.key}). `siyu calendar load FILE` makes the",
             "# running calendar exactly this file: entries left out are removed.", ""]
    for entry in sorted(entries, key=lambda e: e.id):
        lines.append("[[entries]]")
        lines.append(f"id = {_text(entry.id)}")
        if entry.cron is not None:
            lines.append(f"cron = {_text(entry.cron)}")
        if entry.at is not None:
            lines.append(f"at = {_text(entry.at.astimezone(zone).strftime('%Y-%m-%d %H:%M'))}")
        lines += [f"channel = {_text(entry.channel)}", f"template = {_text(entry.template)}",
                  f"title = {_text(entry.title)}", f"audience = {_inline(entry.audience.as_dict())}"]
        if entry.images:
            lines.append(f"images = [{', '.join(_text(i) for i in entry.images)}]")
        if entry.link is not None:
            lines.append(f"link = {_inline({'title': entry.link.title, 'url': entry.link.url, 'cover': entry.link.cover})}")
        if entry.mass:
            lines.append(f"attachments = {_inline(entry.mass.to_json())}")
        if entry.holdout:
            lines.append(f"holdout = {entry.holdout:g}")
        if entry.paused:
            lines.append("paused = true")
        lines.append("")
    return "\n".join(lines)


# -- occurrences -----------------------------------------------------------------------

def to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time in `zone`: the first of two (clocks falling
    back), the end of the jump for one that does not exist (clocks springing forward)."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    low = int(wall.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp())  # before the jump
    high = int(first.timestamp())  # after it
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) > wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def occurrences(entry: EntrySpec, zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """The entry's times in (start, end], in UTC, oldest first."""
    if entry.at is not None:
        return [entry.at] if start < entry.at <= end else []
    if entry.cron is None or end <= start:
        return []
    # APScheduler walks the wall clock as if it were UTC (where no clock jumps); each wall
    # time is then placed in the zone. The slack covers offsets changing in the window.
    trigger = CronTrigger.from_crontab(entry.cron, timezone=UTC)
    wall = start.astimezone(zone).replace(tzinfo=None) - timedelta(hours=3)
    last = end.astimezone(zone).replace(tzinfo=None) + timedelta(hours=3)
    found: set[datetime] = set()
    cursor = wall.replace(tzinfo=UTC)
    while (fire := trigger.get_next_fire_time(None, cursor)) is not None and fire.replace(tzinfo=None) <= last:
        instant = to_instant(fire.replace(tzinfo=None), zone)
        if start < instant <= end:
            found.add(instant)
        cursor = fire + timedelta(seconds=1)
    return sorted(found)


def next_times(entry: EntrySpec, zone: ZoneInfo, after: datetime, count: int = 5) -> list[datetime]:
    """The entry's next `count` times after `after`, in UTC (fewer for a one-off, or a
    cron line that fires more rarely than that in 8 years). Windows grow, so a line that
    fires every minute expands an hour, not a year."""
    found: list[datetime] = []
    for span in (timedelta(hours=1), timedelta(days=1), timedelta(days=31), timedelta(days=366), timedelta(days=8 * 366)):
        found = occurrences(entry, zone, after, after + span)
        if len(found) >= count:
            break
    return found[:count]


def occurrence_key(entry_id: str, at: datetime, zone: ZoneInfo) -> str:
    """The dedupe key prefix of one occurrence: the same wherever and however often it runs."""
    return f"cal:{entry_id}:{at.astimezone(zone):%Y%m%dT%H%M}"


def due(
    entries: Sequence[EntrySpec], zone: ZoneInfo, since: datetime, now: datetime, catch_up: timedelta, catch_up_max: int
) -> tuple[list[tuple[EntrySpec, datetime]], int]:
    """The occurrences to fire in (since, now]: none older than `catch_up`, none of a
    paused entry nor of one from before it was resumed, and of each entry only the
    latest `catch_up_max`; and how many in that window are let go."""
    start = max(since, now - catch_up)
    skipped = 0
    fire: list[tuple[EntrySpec, datetime]] = []
    for entry in entries:
        if entry.paused:
            continue
        times = occurrences(entry, zone, max(start, entry.resumed_at or start), now)
        kept = times[-catch_up_max:] if catch_up_max > 0 else []
        skipped += len(times) - len(kept)
        fire.extend((entry, at) for at in kept)
    return sorted(fire, key=lambda pair: (pair[1], pair[0].id)), skipped
