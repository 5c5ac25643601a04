"""Lift: the intervals are the published ones, the bootstrap covers a known difference,
and small groups say "not enough data" instead of showing noise."""

from __future__ import annotations

import numpy as np
import pytest

from scheduler.holdout import held_out
from scheduler.lift import Group, lift, newcombe, wilson


def test_wilson_and_newcombe_match_the_published_examples() -> None:
    # Newcombe (1998), table II, example (a): 56/70 vs 48/80 → difference 0.2, 95 % CI 0.0524 to 0.3339.
    low, high = newcombe(56, 70, 48, 80)
    assert (low, high) == (pytest.approx(0.0524, abs=5e-4), pytest.approx(0.3339, abs=5e-4))
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == pytest.approx(1.0)


def test_a_real_effect_shows_with_an_interval_that_leaves_out_zero() -> None:
    rng = np.random.default_rng(1)
    reached_spend = [float(v) for v in rng.gamma(4, 10, size=300)]  # 300 of 2000 bought
    held_spend = [float(v) for v in rng.gamma(4, 10, size=20)]  # 20 of 400
    reached = Group(2000, 300, sum(reached_spend), reached_spend)
    held = Group(400, 20, sum(held_spend), held_spend)
    found = lift(reached, held)
    assert found.enough and found.significant
    assert found.rate_difference == pytest.approx(0.15 - 0.05)
    assert found.revenue_interval is not None and found.revenue_difference is not None
    low, high = found.revenue_interval
    assert 0 < low < found.revenue_difference < high
    assert lift(reached, held).revenue_interval == found.revenue_interval  # seeded: the same data, the same interval


def test_no_effect_gives_an_interval_around_zero() -> None:
    same = Group(1000, 100, 4000.0, [40.0] * 100)
    found = lift(same, same)
    assert found.enough and not found.significant
    assert found.rate_interval is not None and found.rate_interval[0] < 0 < found.rate_interval[1]


@pytest.mark.parametrize(("reached", "held"), [
    (Group(1000, 100, 100.0, [1.0] * 100), Group(10, 1, 1.0, [1.0])),  # too few held out
    (Group(100, 1, 1.0, [1.0]), Group(100, 1, 1.0, [1.0])),  # too few conversions
    (Group(0, 0, 0.0), Group(0, 0, 0.0)),  # nothing at all
])
def test_small_groups_say_not_enough_data(reached: Group, held: Group) -> None:
    found = lift(reached, held)
    assert not found.enough and found.rate_interval is None and found.reason


def test_holdouts_are_deterministic_near_the_share_and_differ_by_year() -> None:
    members = range(1, 20_001)
    this_year = {m for m in members if held_out(m, "occasion:birthday", 2026, 0.1)}
    assert this_year == {m for m in members if held_out(m, "occasion:birthday", 2026, 0.1)}
    assert 0.09 < len(this_year) / 20_000 < 0.11
    next_year = {m for m in members if held_out(m, "occasion:birthday", 2027, 0.1)}
    # Not the same members held out of every birthday: about 10 % of them again, by chance.
    assert len(this_year & next_year) / len(this_year) < 0.15
    assert not any(held_out(m, "x", 1, 0.0) for m in members) and all(held_out(m, "x", 1, 1.0) for m in members)


def test_the_bootstrap_handles_rare_converters_and_agrees_with_the_normal_interval_when_large() -> None:
    from scheduler.lift import _welch, revenue_interval

    rare = Group(5000, 2, 100.0, [50.0, 50.0])  # most resamples draw none of them
    low, high = revenue_interval(rare, Group(5000, 1, 50.0, [50.0]))
    assert low < 0.01 < high
    rng = np.random.default_rng(3)
    a = [float(v) for v in rng.gamma(3, 20, size=2000)]
    b = [float(v) for v in rng.gamma(3, 20, size=1500)]
    reached, held = Group(10_000, 2000, sum(a), a), Group(10_000, 1500, sum(b), b)
    boot, normal = revenue_interval(reached, held), _welch(reached, held)
    assert boot == pytest.approx(normal, abs=0.15)  # yuan per member, on a difference of about 3
    squares = Group(10_000, 2000, sum(a), (), float(np.sum(np.square(a))))  # sums only: the same interval
    assert _welch(squares, held) == pytest.approx(normal)


def test_the_95_percent_quantile_is_the_standard_normal_s() -> None:
    from scipy.stats import norm

    from scheduler.lift import Z95

    assert Z95 == float(norm.ppf(0.975))  # written out so the server starts without SciPy
