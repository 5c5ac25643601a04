"""Layer schemes as operators write them, and the pure arithmetic of RFM scores.

A scheme is an ordered list of layers, each with a condition over a member's metrics;
the first layer whose condition holds is hers. The database evaluates the conditions
(scheduler/layer_recompute.py); this module only reads, checks and scores.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# Metrics a condition may name. interactions_<N>d is a family: interactions in the last N days.
METRICS = {
    "recency_days": "days since her last order in the window (none: no order)",
    "frequency": "orders in the window",
    "monetary": "spend in the window, in yuan",
    "r_score": "recency score 1-5 (none: no order in the window)",
    "f_score": "frequency score 1-5",
    "m_score": "monetary score 1-5",
    "paid_member": "a paid membership (true / false)",
    "days_since_joining": "days since member_since (or since she was first seen)",
    "referrals": "members she brought in",
    "p_alive": "probability she is still a customer, 0-1 (BG/NBD; `siyu ltv fit`; none: not scored)",
    "orders_90d": "expected orders in the LTV horizon (90 days by default)",
    "clv_90d": "expected spend in the LTV horizon, in yuan",
    "interactions_<N>d": "what she did in the last N days: her messages, events (link clicks, reactions) and orders; never our messages",
}
LTV_METRICS = ("p_alive", "orders_90d", "clv_90d")
INTERACTIONS = re.compile(r"interactions_(\d{1,4})d")
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq, "!=": operator.ne,
}
CONDITION = re.compile(r"\s*(>=|<=|==|!=|>|<)?\s*(-?\d+(?:\.\d+)?|true|false)\s*")


@dataclass(frozen=True, slots=True)
class Condition:
    metric: str
    op: str  # one of OPERATORS
    value: float | bool

    def holds(self, actual: float | bool | None) -> bool:
        """Pure evaluation, the meaning the SQL must keep: a missing value never holds."""
        return actual is not None and OPERATORS[self.op](actual, self.value)


@dataclass(frozen=True, slots=True)
class Layer:
    name: str
    label: str = ""
    conditions: tuple[Condition, ...] = ()
    tags_all: tuple[str, ...] = ()
    tags_any: tuple[str, ...] = ()
    tags_none: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Scheme:
    name: str
    layers: tuple[Layer, ...]
    label: str = ""
    staff_tasks: bool = False  # prompt owners on moves into the top layer and out of the top two

    def order(self) -> list[str]:
        """Layer names top first, each once (a name may be listed twice for an OR)."""
        return list(dict.fromkeys(layer.name for layer in self.layers))

    def top(self) -> str:
        return self.layers[0].name

    def top_two(self) -> set[str]:
        return set(self.order()[:2])

    def interaction_windows(self) -> set[int]:
        return {int(m.group(1)) for layer in self.layers for c in layer.conditions
                if (m := INTERACTIONS.fullmatch(c.metric))}

    def uses_ltv(self) -> bool:
        return any(c.metric in LTV_METRICS for layer in self.layers for c in layer.conditions)

    def tags(self) -> set[str]:
        return {t for layer in self.layers for t in (*layer.tags_all, *layer.tags_any, *layer.tags_none)}


@dataclass(frozen=True, slots=True)
class RfmSpec:
    window_days: int = 365
    method: str = "quantiles"  # or "thresholds"
    # Thresholds: the score is 1 + how many of these she reaches.
    recency_days: tuple[int, ...] = (365, 180, 90, 30)  # ordered at most this many days ago
    frequency: tuple[int, ...] = (2, 4, 8, 16)  # at least this many orders
    monetary_yuan: tuple[float, ...] = (100, 500, 2000, 5000)  # at least this much spent


def parse_condition(metric: str, written: Any) -> Condition:
    """`r_score = ">= 4"`, `frequency = 0` (means ==), `paid_member = true`."""
    if not known_metric(metric):
        raise ValueError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
    if isinstance(written, bool):
        return Condition(metric, "==", written)
    if isinstance(written, int | float):
        return Condition(metric, "==", float(written))
    match = CONDITION.fullmatch(str(written))
    if match is None:
        raise ValueError(f"{metric}: {written!r} is not a comparison like \">= 4\", \"< 30\" or \"== true\"")
    op, value = match.group(1) or "==", match.group(2)
    if value in ("true", "false"):
        if op not in ("==", "!="):
            raise ValueError(f"{metric}: true/false takes == or != only")
        return Condition(metric, op, value == "true")
    return Condition(metric, op, float(value))


def known_metric(metric: str) -> bool:
    return (metric in METRICS and "<" not in metric) or bool(INTERACTIONS.fullmatch(metric))


def unknown_tags(scheme: Scheme, known: set[str]) -> list[str]:
    return sorted(scheme.tags() - known)


# ── RFM scores ─────────────────────────────────────────────────────────────────────────


def quantile_positions(count: int) -> list[int]:
    """1-based positions, in ascending order, of the upper edge of each of the lower four
    quintiles among `count` values."""
    return [max(1, math.ceil(count * k / 5)) for k in range(1, 5)] if count else []


def score(value: Any, cuts: Sequence[Any]) -> int | None:
    """1 + how many cut points `value` is above. Equal values always score alike (a tie
    on an edge goes to the lower score); None (no order) has no score."""
    if value is None:
        return None
    return 1 + sum(1 for cut in cuts if value > cut)
