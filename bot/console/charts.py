"""Line charts drawn on the server as inline SVG: the geometry, as plain functions.

A chart is days along x and a count along y, one line per series (a layer). Days
without data (no snapshot ran) leave a gap in the line rather than a drop to zero. The
template only places what `line_chart` computed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

# Distinct on white and for the common colour blindnesses (Okabe–Ito), then greys.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#7a6a00", "#1f2328")
MUTED = "#8c959f"
NICE = (1.0, 2.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class Frame:
    """The chart's size and the margins around the plot, in SVG units."""

    # About the size it is shown at (three charts a row), so 11-unit text reads as 11 px.
    width: int = 360
    height: int = 200
    left: int = 40
    right: int = 20  # room for half the last date label
    top: int = 10
    bottom: int = 24

    @property
    def x0(self) -> float:
        return float(self.left)

    @property
    def x1(self) -> float:
        return float(self.width - self.right)

    @property
    def y0(self) -> float:  # the bottom of the plot: zero
        return float(self.height - self.bottom)

    @property
    def y1(self) -> float:
        return float(self.top)


@dataclass(frozen=True, slots=True)
class Tick:
    at: float  # x or y in SVG units
    label: str


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    day: date
    value: float
    label: str


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    color: str
    segments: tuple[str, ...]  # polyline `points` attributes, split where a day has no data
    points: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class Chart:
    frame: Frame
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    lines: tuple[Line, ...]

    @property
    def has_data(self) -> bool:
        return any(line.points for line in self.lines)


def nice_step(raw: float, integer: bool = True) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10ⁿ at least `raw` (at least 1 for counts, and no 2.5)."""
    if raw <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in NICE:
        step = factor * power
        if integer and (step < 1 or step != math.floor(step)):
            continue
        if step >= raw * (1 - 1e-9):
            return step
    return 10.0 * power  # not reached: 10 × 10ⁿ is always at least raw


def value_ticks(high: float, count: int = 4, integer: bool = True) -> list[float]:
    """Tick values from 0 to the first round number at or above `high`, about `count`
    steps. All zeros (or nothing) still gets an axis: 0 and 1."""
    if high <= 0 or not math.isfinite(high):
        return [0.0, 1.0]
    step = nice_step(high / count, integer)
    steps = math.ceil(high / step - 1e-9)
    return [round(step * n, 10) for n in range(steps + 1)]


def scale(value: float, low: float, high: float, out_low: float, out_high: float) -> float:
    """`value` in [low, high] mapped linearly onto [out_low, out_high]; a domain of one
    value maps to the middle."""
    if high == low:
        return (out_low + out_high) / 2
    return out_low + (value - low) / (high - low) * (out_high - out_low)


def day_ticks(count: int, most: int = 7) -> list[int]:
    """Which of `count` days get a date label: evenly spaced, the first and last always."""
    if count <= 0:
        return []
    if count <= most:
        return list(range(count))
    step = math.ceil((count - 1) / (most - 1))
    picked = list(range(0, count, step))
    if picked[-1] != count - 1:
        if count - 1 - picked[-1] < step / 2:
            picked[-1] = count - 1  # too close to the last day to keep both labels apart
        else:
            picked.append(count - 1)
    return picked


def number(value: float) -> str:
    """A count as people read it: 1,234; 12.5 (one decimal at most)."""
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.1f}"


def segments(points: Sequence[tuple[float, float] | None]) -> list[str]:
    """Polyline point lists, broken where a point is missing (None)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for point in points:
        if point is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(point)
    return [" ".join(f"{x:.1f},{y:.1f}" for x, y in run) for run in runs if run]


def line_chart(
    days: Sequence[date],
    series: Mapping[str, Sequence[float | None]],
    *,
    frame: Frame = Frame(),
    colors: Mapping[str, str] | None = None,
    day_format: str = "%m-%d",
) -> Chart:
    """One line per series over `days` (values aligned with them, None where unknown).
    The y axis starts at zero: counts are compared against nothing, not against the
    smallest value of the period."""
    known = [v for values in series.values() for v in values if v is not None]
    ticks = value_ticks(max(known, default=0.0))
    top = ticks[-1]
    last = len(days) - 1

    def x(index: int) -> float:
        return scale(index, 0, last, frame.x0, frame.x1)

    def y(value: float) -> float:
        return scale(value, 0, top, frame.y0, frame.y1)

    lines = []
    for n, (name, values) in enumerate(series.items()):
        color = (colors or {}).get(name) or PALETTE[n % len(PALETTE)]
        placed = [(x(i), y(v)) if v is not None else None for i, v in enumerate(values[:len(days)])]
        points = tuple(
            Point(p[0], p[1], days[i], float(v), number(v))
            for i, (p, v) in enumerate(zip(placed, values, strict=False)) if p is not None and v is not None
        )
        lines.append(Line(name, color, tuple(segments(placed)), points))
    return Chart(
        frame,
        tuple(Tick(x(i), days[i].strftime(day_format)) for i in day_ticks(len(days))),
        tuple(Tick(y(v), number(v)) for v in ticks),
        tuple(lines),
    )
