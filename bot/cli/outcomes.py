"""`siyu outcomes report`: per source over a date range, members reached and held out,
conversion and revenue per member in each, the lift and its 95 % interval (or 数据不足)."""

from __future__ import annotations

import sys
from datetime import date, timedelta

from bot.cli.output import print_json, print_table
from bot.cli.sessions import open_sessions
from bot.settings.model import Settings
from bot.shared.outcomes_report import NOT_ENOUGH, interval_text, last_days, names_for, outcomes_report, percent
from storage.models import utcnow


async def report(settings: Settings, by: str, start: date | None, end: date | None, as_json: bool) -> int:
    end = end or last_days(utcnow(), settings.zone)[1]  # the brand's yesterday
    start = start or end - timedelta(days=29)
    try:
        async with open_sessions(settings) as sessions:
            found = await outcomes_report(sessions, settings.outcomes, settings.zone, by, start, end,
                                            names_for(settings, by))
    except ValueError as error:
        print(f"siyu: {error}", file=sys.stderr)
        return 1
    if as_json:
        print_json(found.to_json())
        return 0
    days = ", ".join(f"{kind} {n}" for kind, n in found.windows.items())
    title = (f"outcomes by {by}, {start} to {end} ({found.attribution}-touch credit; "
             f"conversion: an order within N days of a touch — {days})")
    print_table(title, ("source", "reached", "conv.", "held out", "conv.", "lift", "95% interval",
                        "¥/member lift", "95% interval", "credited"), [
        (r.label, r.reached.members, percent(r.reached.rate), r.held_out.members, percent(r.held_out.rate),
         percent(r.rate_lift) if r.enough else NOT_ENOUGH, interval_text(r.rate_interval, True),
         _yuan(r.revenue_lift_yuan), interval_text(r.revenue_interval_yuan, False), r.credited_orders)
        for r in found.rows
    ])
    if any(not r.enough for r in found.rows):
        print(f"{NOT_ENOUGH}: each group needs {settings.outcomes.min_members} members and both together "
              f"{settings.outcomes.min_conversions} conversions (outcomes.min_members, outcomes.min_conversions)")
    return 0


def _yuan(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"
