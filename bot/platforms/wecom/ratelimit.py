"""A sliding-window send limiter (pure: the clock is passed in, nothing sleeps).

WeCom lets one app send a member at most 30 messages a minute and 1000 an hour and
silently drops the excess (WECOM.md §4.2) — errcode 0, nothing delivered — so the
only way to notice is to count on our side before sending.
"""

from __future__ import annotations

import time
from bisect import bisect_right, insort
from collections.abc import Callable, Sequence
from typing import Protocol

APP_MESSAGE_LIMITS: tuple[tuple[int, float], ...] = ((30, 60.0), (1000, 3600.0))


class WindowLimiter:
    def __init__(
        self,
        limits: Sequence[tuple[int, float]] = APP_MESSAGE_LIMITS,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not limits or any(count < 1 or window <= 0 for count, window in limits):
            raise ValueError(f"bad limits {limits!r}: need (count >= 1, window > 0) pairs")
        self._limits = tuple(limits)
        self._longest = max(window for _, window in limits)
        self._clock = clock
        self._sent: dict[str, list[float]] = {}  # key -> send times, ascending

    def wait_for(self, key: str) -> float:
        """0 when a send for `key` may go now, else the seconds until one may."""
        now = self._clock()
        times = self._pruned(key, now)
        wait = 0.0
        for count, window in self._limits:
            # A send at t counts while t > now - window.
            inside = len(times) - bisect_right(times, now - window)
            if inside >= count:
                # A slot frees when the send `count` places from the newest leaves.
                wait = max(wait, times[len(times) - count] + window - now)
        return wait

    def record(self, key: str) -> None:
        now = self._clock()
        times = self._pruned(key, now)
        if not times:
            self._sent[key] = times
        insort(times, now)  # insort, not append: keeps order even if the clock steps back

    def _pruned(self, key: str, now: float) -> list[float]:
        times = self._sent.get(key)
        if times is None:
            return []
        # Forget sends no window can see any more, so idle keys cost nothing.
        del times[: bisect_right(times, now - self._longest)]
        if not times:
            del self._sent[key]
        return times

    def active_keys(self) -> int:
        """Keys with sends still inside a window (for tests and metrics)."""
        now = self._clock()
        for key in list(self._sent):
            self._pruned(key, now)
        return len(self._sent)


class SendLimits(Protocol):
    """Counts sends per key against the limits, shared by whoever holds the same store."""

    async def reserve(self, keys: Sequence[str]) -> float:
        """Count one send for every key and return 0, or count none and return the
        seconds until all may go."""
        ...


class ProcessSendLimits:
    """`SendLimits` for one process (a second process would count apart: use the
    database's, storage/send_limits.py, when several processes send)."""

    def __init__(self, limiter: WindowLimiter):
        self.limiter = limiter

    async def reserve(self, keys: Sequence[str]) -> float:
        wait = max((self.limiter.wait_for(key) for key in keys), default=0.0)
        if wait > 0:
            return wait
        for key in keys:
            self.limiter.record(key)
        return 0.0
