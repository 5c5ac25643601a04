"""`siyu care run [--date D] [--dry-run] [--json]`: the daily care scan, by hand.

Prints what was (or, with --dry-run, would be) enqueued: counts per occasion and action,
and a few samples. Running it twice for a day enqueues nothing the second time.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import date
from typing import Any

from bot.cli.output import print_json, print_table
from bot.cli.sessions import open_sessions
from bot.settings.care_plan import care_plan
from bot.settings.model import Settings
from bot.settings.templates import renderer_for
from content_templates.renderer import RenderError
from scheduler.care import CareReport, run_care_scan
from storage.models import utcnow


def care_run(settings: Settings, day: date | None, dry_run: bool, as_json: bool) -> int:
    """Synchronous: runs its own event loop. Exit 0, or 1 with the problem on stderr."""
    try:
        plan = care_plan(settings)
    except ValueError as error:
        print(f"siyu: {error}", file=sys.stderr)
        return 1

    async def run() -> CareReport:
        async with open_sessions(settings) as sessions:
            return await run_care_scan(sessions, plan, renderer_for(settings), settings.zone, utcnow(),
                                       day=day, dry_run=dry_run)

    try:
        report = asyncio.run(run())
    except RenderError as error:
        print(f"siyu: {error}", file=sys.stderr)
        return 1
    summary = report_json(report)
    if as_json:
        print_json(summary)
        return 0
    verb = "would enqueue" if dry_run else "enqueued"
    print_table(
        f"care for {report.day} ({verb} {report.total} in {report.seconds:.2f} s; {report.already} done before,"
        f" {report.unreachable} unreachable)",
        ("occasion", "action", "count"),
        [(occasion, action, count) for occasion, actions in summary["counts"].items() for action, count in actions.items()],
    )
    if report.samples:
        print_table("samples", ("member", "occasion", "action", "date", "to", "text"),
                    [(s["member_id"], s["occasion"], s["action"], s["date"], s["to"], s["body"]) for s in report.samples])
    if (six := summary["six_moments"]) is not None:
        print(f"six moments: {six['planned_members']} members planned ({six['planned_touches']} touches),"
              f" {six['tasks']} tasks {'would be ' if dry_run else ''}created, {six['linked']} linked to care tasks")
    return 0


def report_json(report: CareReport) -> dict[str, Any]:
    six = report.six_moments
    return {
        "day": report.day,
        "dry_run": report.dry_run,
        "total": report.total,
        "counts": {occasion: dict(actions) for occasion, actions in sorted(report.counts.items())},
        "already": report.already,
        "unreachable": report.unreachable,
        "samples": report.samples,
        "six_moments": None if six is None else {
            "planned_members": six.planned_members, "planned_touches": six.planned_touches,
            "tasks": six.tasks, "linked": six.linked, "samples": six.samples,
        },
        "seconds": round(report.seconds, 3),
    }
