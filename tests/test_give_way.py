"""Handling gives way to a burst of acknowledgements, and only to a burst."""

from __future__ import annotations

import asyncio

import pytest

from handlers.give_way import AckRate, GiveWay, pause_after


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_rate_counts_the_last_second_and_forgets_older_acknowledgements() -> None:
    clock = Clock()
    rate = AckRate(clock)
    rate.note(150)
    clock.now += 0.5
    rate.note(150)
    assert rate.per_second() == 300
    clock.now += 0.5  # the first half-second has passed out of the window
    assert rate.per_second() == 150
    clock.now += 5  # a quiet spell: nothing counts
    assert rate.per_second() == 0


def test_the_pause_leaves_handling_its_share_and_is_bounded() -> None:
    assert pause_after(0.005, share=0.05) == pytest.approx(0.095)
    assert pause_after(0.010, share=0.1) == pytest.approx(0.090)
    assert pause_after(3.0, share=0.05, longest=1.0) == 1.0


async def handle_rows(way: GiveWay, members: int, rows: int) -> tuple[int, list[str]]:
    """Members handled concurrently, as the dispatcher does; returns the most rows that
    were in hand at once and the order rows finished in."""
    in_hand, most, finished = 0, 0, []

    async def member(name: str) -> None:
        nonlocal in_hand, most
        for n in range(rows):
            async with way.turn():
                in_hand += 1
                most = max(most, in_hand)
                await asyncio.sleep(0.002)
                in_hand -= 1
                finished.append(f"{name}{n}")

    await asyncio.gather(*(member(chr(ord("a") + m)) for m in range(members)))
    return most, finished


async def test_while_callbacks_pour_in_one_row_is_handled_at_a_time() -> None:
    most, finished = await handle_rows(GiveWay(lambda: 5000.0, busy_rate=200, share=0.5), members=4, rows=3)
    assert most == 1
    assert len(finished) == 12
    for name in "abcd":  # each member's rows still in her order
        assert [row for row in finished if row[0] == name] == [f"{name}0", f"{name}1", f"{name}2"]


async def test_a_row_that_has_waited_long_no_longer_gives_way() -> None:
    way = GiveWay(lambda: 5000.0, busy_rate=200, patience=30)
    in_hand = 0
    most = 0

    async def row(waited: float) -> None:
        nonlocal in_hand, most
        async with way.turn(waited=waited):
            in_hand += 1
            most = max(most, in_hand)
            await asyncio.sleep(0.01)
            in_hand -= 1

    await asyncio.gather(*(row(45.0) for _ in range(4)))
    assert most == 4  # a flood that lasts is shared, not waited out


async def test_everyday_traffic_leaves_handling_alone() -> None:
    most, finished = await handle_rows(GiveWay(lambda: 20.0, busy_rate=200), members=4, rows=3)
    assert most == 4
    assert len(finished) == 12


async def test_when_the_burst_ends_waiting_rows_go_at_full_speed() -> None:
    rate = {"now": 5000.0}
    way = GiveWay(lambda: rate["now"], busy_rate=200, share=0.01)  # a row, then a long pause

    async def end_burst() -> None:
        await asyncio.sleep(0.05)
        rate["now"] = 0.0

    ending = asyncio.create_task(end_burst())
    most, finished = await asyncio.wait_for(handle_rows(way, members=4, rows=3), timeout=5)
    await ending
    assert len(finished) == 12
    assert most > 1  # the rows after the burst ran side by side again
