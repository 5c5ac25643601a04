"""Lift with honest uncertainty: the difference between members reached and members held
out, in conversion rate and in revenue per member, each with a 95 % interval — or "not
enough data" when a group is too small or too few converted to say anything.

- Conversion: Newcombe's hybrid score interval for a difference of two proportions
  (Wilson intervals of each rate combined; Newcombe 1998, method 10), which behaves at
  small counts and near 0 where the textbook Wald interval does not.
- Revenue per member: a percentile bootstrap of the difference of the two means
  (fixed seed: the same data give the same interval). Most members buy nothing, so a
  resample draws how many of her group's converters come up (binomial) and then which
  (uniform among them) — exact, and light. Past `BOOTSTRAP_LIMIT` converters the normal
  approximation (Welch) is used: at that size the two agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from storage.outcomes import REVENUES_LIMIT

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile (scipy.stats.norm.ppf(0.975))
RESAMPLES = 2000
BOOTSTRAP_LIMIT = REVENUES_LIMIT  # converters in a group above which the normal approximation is used


@dataclass(frozen=True, slots=True)
class Group:
    members: int
    converted: int
    revenue: float  # total, in yuan
    revenues: Sequence[float] = ()  # each converter's, in yuan; the others spent nothing
    # The sum of the squares of every member's revenue (yuan²): enough for the normal
    # interval when the revenues are not listed (large groups). None: from `revenues`.
    squares: float | None = None

    @property
    def rate(self) -> float | None:
        return self.converted / self.members if self.members else None

    @property
    def per_member(self) -> float | None:
        return self.revenue / self.members if self.members else None


@dataclass(frozen=True, slots=True)
class Lift:
    enough: bool  # False: "not enough data"; the differences below are then None
    rate_difference: float | None = None
    rate_interval: tuple[float, float] | None = None
    revenue_difference: float | None = None  # per member, yuan
    revenue_interval: tuple[float, float] | None = None
    reason: str = ""

    @property
    def significant(self) -> bool:
        """The conversion interval leaves out zero."""
        return self.rate_interval is not None and (self.rate_interval[0] > 0 or self.rate_interval[1] < 0)


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(x1: int, n1: int, x0: int, n0: int, z: float = Z95) -> tuple[float, float]:
    """95 % interval for p1 - p0 (method 10 of Newcombe 1998)."""
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson(x1, n1, z)
    l0, u0 = wilson(x0, n0, z)
    d = p1 - p0
    return d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)


def _resampled_means(group: Group, rng: np.random.Generator, resamples: int) -> np.ndarray:
    values = np.asarray(group.revenues, dtype=np.float64)
    k, n = len(values), group.members
    if k == 0:
        return np.zeros(resamples)
    hits = rng.binomial(n, k / n, size=resamples)  # how many converters each resample draws
    picks = rng.integers(0, k, size=int(hits.sum()))
    resample = np.repeat(np.arange(resamples), hits)  # which resample each pick belongs to
    return np.bincount(resample, weights=values[picks], minlength=resamples) / n


def revenue_interval(reached: Group, held: Group, seed: int = 17, resamples: int = RESAMPLES) -> tuple[float, float]:
    if max(len(reached.revenues), len(held.revenues)) > BOOTSTRAP_LIMIT or \
            len(reached.revenues) != reached.converted or len(held.revenues) != held.converted:
        return _welch(reached, held)
    rng = np.random.default_rng(seed)
    difference = _resampled_means(reached, rng, resamples) - _resampled_means(held, rng, resamples)
    low, high = np.percentile(difference, [2.5, 97.5])
    return float(low), float(high)


def _welch(reached: Group, held: Group) -> tuple[float, float]:
    def mean_var(g: Group) -> tuple[float, float]:
        mean = g.revenue / g.members
        squares = g.squares if g.squares is not None else float(np.sum(np.square(np.asarray(g.revenues, dtype=np.float64))))
        variance = max(squares / g.members - mean * mean, 0.0) * g.members / max(g.members - 1, 1)
        return mean, variance / g.members

    m1, v1 = mean_var(reached)
    m0, v0 = mean_var(held)
    half = Z95 * math.sqrt(v1 + v0)
    return m1 - m0 - half, m1 - m0 + half


def lift(reached: Group, held: Group, min_members: int = 30, min_conversions: int = 5) -> Lift:
    """Reached against held out; "not enough data" below `min_members` in either group or
    `min_conversions` in both together — an interval from a handful is noise."""
    if reached.members < min_members or held.members < min_members:
        return Lift(False, reason=f"each group needs at least {min_members} members")
    if reached.converted + held.converted < min_conversions:
        return Lift(False, reason=f"at least {min_conversions} conversions are needed")
    assert reached.rate is not None and held.rate is not None
    assert reached.per_member is not None and held.per_member is not None
    return Lift(
        True,
        reached.rate - held.rate, newcombe(reached.converted, reached.members, held.converted, held.members),
        reached.per_member - held.per_member, revenue_interval(reached, held),
    )
