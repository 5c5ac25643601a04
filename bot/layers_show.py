"""`siyu layers show`: the current pyramid of a scheme, and each layer's week against the
week before (from the daily engagement snapshots)."""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from typing import Any

from bot.config import Settings
from bot.output import print_json, print_table
from storage.engagement import NO_LAYER, engagement_series, layer_counts
from storage.engine import SessionFactory, create_database_engine, session_factory
from storage.models import EngagementDay

WEEK = 7
MEDIAN_NOTE = "median first reply: the median of the daily medians of the week"
AVERAGE_NOTE = "active members / day: the average over the days a snapshot ran"
# (key, label) of what the week table shows, in order.
METRICS = (
    ("active_per_day", "active members / day"),
    ("active_rate", "active rate % (of members)"),
    ("messages_in", "messages in"),
    ("messages_out", "messages out"),
    ("bot_replies", "bot replies"),
    ("staff_replies", "staff replies"),
    ("median_first_reply_seconds", "median first reply"),
    ("care_sent", "care sent"),
    ("tasks_done_on_time", "tasks done on time"),
    ("tasks_due", "tasks due"),
    ("orders", "orders"),
    ("revenue_yuan", "revenue (yuan)"),
)
SUMMED = ("messages_in", "messages_out", "bot_replies", "staff_replies", "care_sent", "tasks_due",
          "tasks_done_on_time", "orders")


@asynccontextmanager
async def _sessions(settings: Settings) -> AsyncIterator[SessionFactory]:
    engine = create_database_engine(settings.storage.url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


def ordered_layers(layer_order: Sequence[str], present: Sequence[str]) -> list[str]:
    """The scheme's layers top first, then layers it no longer names, then NO_LAYER."""
    known = [layer for layer in layer_order if layer != NO_LAYER]
    others = sorted({layer for layer in present if layer not in known and layer != NO_LAYER})
    tail = [NO_LAYER] if NO_LAYER in present else []
    return known + others + tail


def week_summary(days: Sequence[EngagementDay], days_run: int) -> dict[str, Any]:
    """A layer's week from its daily rows. `days_run` is how many of the week's days
    have a snapshot at all (of any layer): the average is over those."""
    summary: dict[str, Any] = {name: sum(getattr(d, name) for d in days) for name in SUMMED}
    member_days = sum(d.members for d in days)
    active = sum(d.active for d in days)
    summary["active_per_day"] = round(active / days_run, 1) if days_run else None
    summary["active_rate"] = round(100 * active / member_days, 1) if member_days else None
    medians = [d.median_first_reply_seconds for d in days if d.median_first_reply_seconds is not None]
    summary["median_first_reply_seconds"] = float(statistics.median(medians)) if medians else None
    summary["revenue_yuan"] = round(sum(d.revenue_cents for d in days) / 100, 2)
    return {key: summary[key] for key, _ in METRICS}


def change(this: Any, previous: Any) -> Any:
    if this is None or previous is None:
        return None
    return round(this - previous, 2)


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
    async with _sessions(settings) as sessions, sessions() as session:
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
