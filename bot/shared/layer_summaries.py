"""A layer's week in figures, from the daily engagement snapshots: what `siyu layers show`
prints and the console's overview draws."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from storage.engagement import NO_LAYER
from storage.models import EngagementDay

WEEK = 7
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
