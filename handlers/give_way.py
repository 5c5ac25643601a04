"""Handling gives way to acknowledgements.

In a process that both answers callbacks and handles them (`server.role = "all"`), both
share one event loop. A platform retries a callback it did not see answered within
seconds, and an answered callback is durably stored; its handling can wait. So while
callbacks arrive faster than `busy_rate` a second, handling takes turns: one row at a time,
and after each row a pause long enough that handling uses at most `share` of the loop's
time. Welcomes are not held: they go ahead in batches (handlers/early_welcome.py) and
their sends are delivery's, which never waits here. When the burst is over, handling runs
at full speed again at once; a burst never stops it altogether. A row that has already
waited `patience` no longer gives way: a burst is short, and a flood that lasts is not a
burst but a load to share (one that lasts calls for a worker process: `server.role`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

BUSY_RATE = 200.0  # acknowledgements a second; a brand's everyday traffic stays far below
HANDLING_SHARE = 0.02
LONGEST_PAUSE = 1.0  # seconds: a slow row does not stall handling for longer than this
PATIENCE = 30.0  # seconds a row gives way for at most


class AckRate:
    """Callbacks acknowledged a second, over the last second or so (two half-second
    buckets: cheap enough to note on every commit)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, bucket_seconds: float = 0.5):
        self._clock = clock
        self._width = bucket_seconds
        self._bucket = 0  # index of the current bucket since the clock's epoch
        self._current = 0
        self._previous = 0

    def note(self, count: int) -> None:
        self._roll()
        self._current += count

    def per_second(self) -> float:
        self._roll()
        return (self._current + self._previous) / (2 * self._width)

    def _roll(self) -> None:
        bucket = int(self._clock() // self._width)
        if bucket != self._bucket:
            self._previous = self._current if bucket == self._bucket + 1 else 0
            self._current = 0
            self._bucket = bucket


def pause_after(seconds_handling: float, share: float = HANDLING_SHARE, longest: float = LONGEST_PAUSE) -> float:
    """How long to wait after a row that took `seconds_handling`, so that handling takes
    `share` of the time: a row of 5 ms at a fiftieth is followed by 245 ms."""
    return min(seconds_handling * (1 - share) / share, longest)


class GiveWay:
    """Turns for handling while acknowledgements are pressing; free passage otherwise."""

    def __init__(self, acks_per_second: Callable[[], float], busy_rate: float = BUSY_RATE,
                 share: float = HANDLING_SHARE, patience: float = PATIENCE):
        self._acks_per_second = acks_per_second
        self._busy_rate = busy_rate
        self._share = share
        self._patience = patience
        self._turn = asyncio.Lock()

    def pressing(self) -> bool:
        return self._acks_per_second() > self._busy_rate

    @contextlib.asynccontextmanager
    async def turn(self, waited: float = 0.0) -> AsyncIterator[None]:
        """Around the handling of a row that has waited `waited` seconds since it was
        stored: waits its turn while callbacks are pressing."""
        if waited >= self._patience or not self.pressing():
            yield
            return
        async with self._turn:
            started = time.perf_counter()
            yield
            if self.pressing():
                await asyncio.sleep(pause_after(time.perf_counter() - started, self._share))


def never_busy() -> float:
    """For a process that answers no callbacks (a worker): nothing to give way to."""
    return 0.0
