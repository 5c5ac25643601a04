"""`siyu calendar load FILE`, `siyu calendar export [FILE]` and `siyu calendar preview`.

The calendar lives in the database; a file is how operators write it. Loading checks the
whole file and applies it in one transaction (entries not in the file are removed), or
changes nothing and lists every problem. A running server reads the entries at every
scan, so a load applies without a restart.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bot.cli.output import print_json, print_table
from bot.cli.sessions import open_sessions
from bot.settings.calendar_context import calendar_context
from bot.settings.delivery import preview_policy
from bot.settings.model import Settings
from scheduler.calendar import EntrySpec, calendar_toml, parse_calendar
from scheduler.calendar_preview import Preview, preview_calendar
from scheduler.calendar_run import calendar_entries, load_calendar
from scheduler.mass_attachments import media_problems as mass_media_problems
from scheduler.moments import media_problems
from storage.models import utcnow


def _read(path: Path) -> tuple[str | None, str | None]:
    try:
        return path.read_text(encoding="utf-8"), None
    except FileNotFoundError:
        return None, f"{path}: no such file"
    except (OSError, UnicodeDecodeError) as error:
        return None, f"{path}: cannot read it: {error}"


def calendar_file_problems(settings: Settings, path: Path) -> list[str]:
    """What `siyu check` finds in a calendar file, image files included (store codes
    need the database: load checks them)."""
    text, problem = _read(path)
    if text is None:
        return [f"{problem} (named by calendar.file)"]
    context = calendar_context(settings)
    entries, problems = parse_calendar(text, str(path), context)
    for entry in entries:
        problems.extend(f'{path}: entry "{entry.id}": {p}'
                        for p in [*media_problems(context.media_dir, entry.images, entry.link),
                                  *mass_media_problems(context.media_dir, entry.mass)])
    return problems


# -- the commands ----------------------------------------------------------------------

def load(settings: Settings, file: str) -> int:
    text, problem = _read(Path(file))
    if text is None:
        print(f"siyu: {problem}", file=sys.stderr)
        return 1

    async def run() -> tuple[Any, list[str]]:
        async with open_sessions(settings) as sessions:
            return await load_calendar(sessions, text, file, calendar_context(settings), utcnow())

    changes, problems = asyncio.run(run())
    if changes is None:
        for line in problems:
            print(line, file=sys.stderr)
        print(f"{len(problems)} problem(s) found: the running calendar is unchanged", file=sys.stderr)
        return 1
    total = len(changes.added) + len(changes.changed) + changes.unchanged
    print(f"calendar loaded from {file}: {total} entries — added {_names(changes.added)}, changed "
          f"{_names(changes.changed)}, removed {_names(changes.removed)}, {changes.unchanged} unchanged")
    return 0


def _names(ids: list[str]) -> str:
    return f"{len(ids)} ({', '.join(ids)})" if ids else "0"


def export(settings: Settings, file: str | None) -> int:
    async def run() -> list[EntrySpec]:
        async with open_sessions(settings) as sessions:
            return await calendar_entries(sessions)

    entries = asyncio.run(run())
    text = calendar_toml(entries, settings.zone)
    if file is None:
        sys.stdout.write(text)
        return 0
    Path(file).write_text(text, encoding="utf-8")
    print(f"wrote {len(entries)} calendar entries to {file}")
    return 0


def preview(settings: Settings, start: date | None, days: int, as_json: bool, file: str | None = None) -> int:
    """Per day from `start` (default today) for `days` days: the running calendar, or the
    calendar in `file` as it would run if loaded."""
    if days < 1:
        print("siyu: --days must be at least 1", file=sys.stderr)
        return 1
    context = calendar_context(settings)
    file_entries: list[EntrySpec] | None = None
    if file is not None:
        text, problem = _read(Path(file))
        file_entries, problems = parse_calendar(text, file, context) if text is not None else ([], [str(problem)])
        if problems:
            for line in problems:
                print(line, file=sys.stderr)
            return 1
    first = start or utcnow().astimezone(settings.zone).date()

    async def run() -> Preview:
        async with open_sessions(settings) as sessions:
            entries = file_entries if file_entries is not None else await calendar_entries(sessions)
            return await preview_calendar(sessions, entries, context.renderer, context.persona,
                                          preview_policy(settings), settings.delivery.cap_scheme, first, days)

    result = asyncio.run(run())
    report = preview_report(result, settings)
    if as_json:
        print_json(report)
        return 0
    columns = ("time", "entry", "channel", "audience", "reached", "by layer", "held back", "after quiet hours")
    for day in report["schedule"]:
        if day["entries"]:
            print_table(f"{day['date']} ({settings.timezone})", columns, [
                (e["time"], e["id"], e["channel"], e["audience"], e["reached"], _pairs(e["by_layer"]), _pairs(e["held"]),
                 f"{e['deferred']} at {e['deferred_until']}" if e["deferred"] else "")
                for e in day["entries"]])
    quiet = [day["date"] for day in report["schedule"] if not day["entries"]]
    if quiet:
        print(f"nothing fires on {len(quiet)} of the {days} days")
    print_table("one rendered sample per entry", ("entry", "text"), list(report["samples"].items()))
    if report["paused"]:
        print(f"paused: {', '.join(report['paused'])}")
    return 0


def _pairs(values: dict[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in values.items())


def preview_report(result: Preview, settings: Settings) -> dict[str, Any]:
    schedule = []
    for n in range(result.days):
        day = result.start + timedelta(days=n)
        schedule.append({"date": day.isoformat(), "entries": [
            {"id": o.entry.id, "title": o.entry.title, "channel": o.entry.channel, "time": f"{o.at:%H:%M}",
             "audience": o.audience, "reached": o.reached, "by_layer": o.by_layer, "held": o.held,
             "deferred": o.deferred, "deferred_until": f"{o.deferred_until:%m-%d %H:%M}" if o.deferred_until else None}
            for o in result.outcomes if o.day == day
        ]})
    return {"from": result.start.isoformat(), "days": result.days, "timezone": settings.timezone,
            "schedule": schedule, "samples": result.samples, "paused": result.paused}
