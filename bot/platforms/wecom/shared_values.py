"""Short-lived secrets every process uses — access tokens, JS-SDK tickets — behind one
interface: `ProcessValues` keeps them in this process; `storage/shared_values.py` keeps
them in the database, so N processes fetch once (the official account invalidates its
old token when a new one is fetched, so one process fetching would cut off the others).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

Fetched = tuple[str, int]  # the value and its lifetime in seconds


class SharedValues(Protocol):
    """Short-lived secrets every process uses (tokens, tickets), fetched by one at a time."""

    async def read(self, name: str) -> tuple[str, float] | None: ...

    async def fetch(self, name: str, fetch: Callable[[], Awaitable[Fetched]], fresher_than: float) -> tuple[str, float]: ...

    async def forget(self, name: str, value: str) -> None: ...


class ProcessValues:
    """`SharedValues` for one process: a dict, a lock per name, a monotonic clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._values: dict[str, tuple[str, float]] = {}  # name -> (value, expires at)
        self._locks: dict[str, asyncio.Lock] = {}

    async def read(self, name: str) -> tuple[str, float] | None:
        found = self._values.get(name)
        if found is None or found[1] <= self._clock():
            return None
        return found[0], found[1] - self._clock()

    async def fetch(self, name: str, fetch: Callable[[], Awaitable[Fetched]], fresher_than: float) -> tuple[str, float]:
        async with self._locks.setdefault(name, asyncio.Lock()):
            found = await self.read(name)
            if found is not None and found[1] > fresher_than:
                return found
            value, lifetime = await fetch()
            self._values[name] = (value, self._clock() + lifetime)
            return value, float(lifetime)

    async def forget(self, name: str, value: str) -> None:
        if self._values.get(name, ("",))[0] == value:
            del self._values[name]
