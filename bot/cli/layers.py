"""`siyu layers recompute` (layers computed now, as the daily job does) and
`siyu layers show` (the pyramid and week over week)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from bot.cli.output import print_json, print_table
from bot.cli.sessions import open_sessions
from bot.settings.model import Settings
from bot.settings.templates import renderer_for
from bot.shared.config_store import settings_in_force
from bot.shared.layer_summaries import METRICS, WEEK, change, ordered_layers, week_summary
from scheduler.layer_jobs import recompute_layers
from storage.engagement import engagement_series, layer_counts
from storage.models import utcnow

MEDIAN_NOTE = "median first reply: the median of the daily medians of the week"
AVERAGE_NOTE = "active members / day: the average over the days a snapshot ran"


async def layers_recompute(settings: Settings, scheme: str | None, full: bool, as_json: bool) -> int:
    settings = await _in_force(settings)  # the schemes as the console holds them, as the server runs them
    schemes = [s.scheme() for s in settings.layers.schemes if scheme in (None, s.name)]
    if not schemes:
        known = ", ".join(s.name for s in settings.layers.schemes)
        print(f"siyu: no layer scheme {scheme!r} (configured: {known})", file=sys.stderr)
        return 1
    started = time.perf_counter()
    async with open_sessions(settings) as sessions:
        reports = await recompute_layers(
            sessions, schemes, settings.layers.rfm.spec(), renderer_for(settings), settings.zone, utcnow(), full=full
        )
    seconds = time.perf_counter() - started
    rows = [{"scheme": r.scheme, "full": r.full, "members": r.members, "moves": r.moves, "tasks": r.tasks}
            for r in reports]
    if as_json:
        print_json({"schemes": rows, "seconds": round(seconds, 2)})
    else:
        print_table(f"layers recomputed in {seconds:.1f} s", ("scheme", "run", "members", "moved", "tasks"),
                    [(r["scheme"], "full" if r["full"] else "incremental", r["members"], r["moves"], r["tasks"])
                     for r in rows])
    return 0


async def _in_force(settings: Settings) -> Settings:
    async with open_sessions(settings) as sessions:
        return await settings_in_force(sessions, settings)


def show(settings: Settings, scheme_name: str | None, as_json: bool) -> int:
    settings = asyncio.run(_in_force(settings))  # layers added or reordered in the console
    configured = settings.layers.schemes
    chosen = next((s for s in configured if scheme_name in (None, s.name)), None)
    if chosen is None:
        print(f"siyu: no layer scheme {scheme_name!r} (configured: {', '.join(s.name for s in configured)})",
              file=sys.stderr)
        return 1
    return asyncio.run(layers_show(settings, chosen.name, chosen.scheme().order(), as_json))


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def _shown(key: str, value: Any, signed: bool = False) -> str:
    if value is None:
        return "-"
    if key == "median_first_reply_seconds":
        return ("-" if value < 0 else "+") + duration(abs(value)) if signed else duration(value)
    if key == "revenue_yuan":
        return f"{value:+,.2f}" if signed else f"{value:,.2f}"
    if isinstance(value, float):
        return f"{value:+.1f}" if signed else f"{value:.1f}"
    return f"{value:+d}" if signed else str(value)


def _percent_change(this: Any, previous: Any) -> str:
    if this is None or previous in (None, 0):
        return ""
    return f" ({100 * (this - previous) / previous:+.0f}%)"


async def layers_show(
    settings: Settings, scheme: str, layer_order: Sequence[str], as_json: bool, today: date | None = None
) -> int:
    today = today or datetime.now(settings.zone).date()
    this_first = today - timedelta(days=WEEK - 1)
    previous_first, previous_last = this_first - timedelta(days=WEEK), this_first - timedelta(days=1)
    async with open_sessions(settings) as sessions, sessions() as session:
        counts = await layer_counts(session, scheme)
        series = await engagement_series(session, scheme, previous_first, today)
    total = sum(counts.values())
    pyramid = [
        {"layer": layer, "members": counts.get(layer, 0),
         "share": round(100 * counts.get(layer, 0) / total, 1) if total else 0.0}
        for layer in ordered_layers(layer_order, list(counts))
    ]
    this_days = len({d.day for d in series if d.day >= this_first})
    previous_days = len({d.day for d in series if d.day <= previous_last})
    layers = []
    for layer in ordered_layers(layer_order, list(counts) + [d.layer for d in series]):
        rows = [d for d in series if d.layer == layer]
        this = week_summary([d for d in rows if d.day >= this_first], this_days)
        previous = week_summary([d for d in rows if d.day <= previous_last], previous_days)
        layers.append({
            "layer": layer,
            "this_week": this,
            "previous_week": previous,
            "change": {key: change(this[key], previous[key]) for key, _ in METRICS},
        })
    report = {
        "scheme": scheme,
        "today": today.isoformat(),
        "this_week": {"first": this_first.isoformat(), "last": today.isoformat(), "snapshot_days": this_days},
        "previous_week": {
            "first": previous_first.isoformat(), "last": previous_last.isoformat(), "snapshot_days": previous_days,
        },
        "notes": [MEDIAN_NOTE, AVERAGE_NOTE],
        "pyramid": pyramid,
        "layers": layers,
    }
    if as_json:
        print_json(report)
        return 0
    print_table(
        f"layers of {scheme!r}: {total} members (top first)",
        ("layer", "members", "share"),
        [(p["layer"], p["members"], f"{p['share']:.1f}%") for p in pyramid],
    )
    if not series:
        print(f"no engagement snapshots of {scheme!r} from {previous_first} to {today}: "
              "the daily snapshot has not run for these days")
        return 0
    for entry in layers:
        this, previous = entry["this_week"], entry["previous_week"]
        print_table(
            f"{entry['layer']}: {this_first}..{today} vs {previous_first}..{previous_last}",
            ("measure", "previous 7 days", "last 7 days", "change"),
            [
                (label, _shown(key, previous[key]), _shown(key, this[key]),
                 _shown(key, entry["change"][key], signed=True) + _percent_change(this[key], previous[key]))
                for key, label in METRICS
            ],
        )
    print(f"({MEDIAN_NOTE}; {AVERAGE_NOTE}: {previous_days} and {this_days} of 7)")
    return 0
