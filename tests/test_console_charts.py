"""The chart geometry of the console (bot/console/charts.py): pure functions, no server."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bot.console.charts import Frame, day_ticks, line_chart, nice_step, number, scale, segments, value_ticks

FRAME = Frame(width=500, height=200, left=40, right=10, top=10, bottom=30)
DAYS = [date(2026, 11, 1) + timedelta(days=n) for n in range(30)]


@pytest.mark.parametrize(("raw", "step"), [(0.3, 1), (1, 1), (1.2, 2), (3, 5), (7, 10), (22, 25), (30, 50), (3100, 5000)])
def test_steps_are_round_and_whole_for_counts(raw: float, step: float) -> None:
    assert nice_step(raw) == step


def test_fractional_steps_only_when_asked() -> None:
    assert nice_step(0.3, integer=False) == 0.5
    assert nice_step(2.2, integer=False) == 2.5


def test_value_ticks_start_at_zero_and_reach_past_the_highest_value() -> None:
    assert value_ticks(17) == [0, 5, 10, 15, 20]
    assert value_ticks(20) == [0, 5, 10, 15, 20]  # the edge itself: no extra step
    assert value_ticks(3) == [0, 1, 2, 3]
    assert value_ticks(1) == [0, 1]


def test_all_zeros_still_get_an_axis() -> None:
    assert value_ticks(0) == [0, 1]


def test_scale_maps_the_edges_and_a_single_value_to_the_middle() -> None:
    assert scale(0, 0, 10, 170, 10) == 170  # y grows downwards: zero at the bottom
    assert scale(10, 0, 10, 170, 10) == 10
    assert scale(5, 0, 10, 170, 10) == 90
    assert scale(3, 3, 3, 40, 490) == 265


def test_day_labels_are_spread_and_keep_the_first_and_last_day() -> None:
    assert day_ticks(0) == []
    assert day_ticks(1) == [0]
    assert day_ticks(7) == list(range(7))
    assert day_ticks(30) == [0, 5, 10, 15, 20, 25, 29]
    ticks = day_ticks(90)
    assert ticks[0] == 0 and ticks[-1] == 89 and len(ticks) <= 7
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert min(gaps) >= max(gaps) / 2  # the last label never crowds the one before it


def test_segments_break_where_a_day_is_missing() -> None:
    assert segments([(0, 1), (2, 3), None, (4, 5), None, None]) == ["0.0,1.0 2.0,3.0", "4.0,5.0"]
    assert segments([None, None]) == []


def test_a_chart_places_each_layer_on_a_shared_scale_with_dated_points() -> None:
    chart = line_chart(DAYS[:3], {"超级用户": [2, 4, 8], "普通用户": [0, None, 1]}, frame=FRAME)
    assert [t.label for t in chart.y_ticks] == ["0", "2", "4", "6", "8"]
    assert [t.label for t in chart.x_ticks] == ["11-01", "11-02", "11-03"]
    top, bottom = chart.lines
    assert [(p.x, p.y) for p in top.points] == [(40, 130), (265, 90), (490, 10)]
    assert top.segments == ("40.0,130.0 265.0,90.0 490.0,10.0",)
    assert [p.day for p in bottom.points] == [DAYS[0], DAYS[2]]
    assert bottom.segments == ("40.0,170.0", "490.0,150.0")  # no line drawn across the missing day
    assert top.color != bottom.color


def test_a_single_day_sits_in_the_middle() -> None:
    chart = line_chart(DAYS[:1], {"超级用户": [5]}, frame=FRAME)
    (point,) = chart.lines[0].points
    assert point.x == 265 and point.label == "5" and point.day == DAYS[0]
    assert [t.label for t in chart.x_ticks] == ["11-01"]


def test_all_zeros_lie_on_the_bottom_edge() -> None:
    chart = line_chart(DAYS, {"a": [0.0] * 30, "b": [0.0] * 30}, frame=FRAME)
    assert chart.has_data
    assert {p.y for line in chart.lines for p in line.points} == {170}
    assert [t.label for t in chart.y_ticks] == ["0", "1"]


def test_no_data_at_all_is_said_so() -> None:
    assert not line_chart(DAYS, {"a": [None] * 30}).has_data
    assert not line_chart(DAYS, {}).has_data


def test_a_chosen_colour_wins_and_numbers_read_well() -> None:
    chart = line_chart(DAYS[:2], {"未分层": [1, 2]}, colors={"未分层": "#8c959f"})
    assert chart.lines[0].color == "#8c959f"
    assert number(12345) == "12,345" and number(2.25) == "2.2" and number(3.0) == "3"
