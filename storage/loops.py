"""The process's long-lived loops (dispatcher, delivery, scheduler) under a supervisor.

Each loop body runs as a task; when it raises, the supervisor logs it, waits (1 s,
doubling to `backoff_max`) and starts it again, so a database that is away for a while
costs a pause, never the loop. Loops tick after each pass that worked; `/healthz` reads
`problems()` to tell a dead loop (restarting after an error) or a stalled one (no tick
for its `stall_after`) from a healthy one. At the bottom floor so the dispatcher
(handlers) and delivery and the scheduler (scheduler) may all use it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from storage.models import utcnow

log = logging.getLogger(__name__)

LoopStatus = Literal["running", "restarting", "stopped"]


@dataclass(slots=True)
class LoopState:
    name: str
    stall_after: float  # seconds without a tick after which the loop counts as stalled
    started_at: datetime
    status: LoopStatus = "running"
    last_tick: datetime | None = None
    restarts: int = 0
    last_error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)  # what the loop says of itself (e.g. leader)

    def problem(self, now: datetime) -> str | None:
        if self.status == "restarting":
            return f"{self.name} is restarting after {self.last_error}"
        if self.status == "stopped":
            return f"{self.name} has stopped"
        since = self.last_tick or self.started_at
        idle = (now - since).total_seconds()
        if idle > self.stall_after:
            cause = f" (last error: {self.last_error})" if self.last_error else ""
            return f"{self.name} has not completed a pass for {idle:.0f} s{cause}"
        return None

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "last_tick": self.last_tick.isoformat() if self.last_tick else None,
            "restarts": self.restarts,
            "last_error": self.last_error,
            **self.detail,
        }


class Loops:
    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = utcnow,
        backoff_first: float = 1.0,
        backoff_max: float = 30.0,
        stall_after: float = 120.0,
    ):
        self._clock = clock
        self._backoff_first = backoff_first
        self._backoff_max = backoff_max
        self._stall_after = stall_after
        self._states: dict[str, LoopState] = {}

    def run(self, name: str, body: Callable[[], Awaitable[None]], *, stall_after: float | None = None) -> asyncio.Task[None]:
        """Start `body` under supervision; the task ends when `body` returns or is cancelled."""
        state = LoopState(name, stall_after or self._stall_after, self._clock())
        self._states[name] = state
        return asyncio.create_task(self._supervise(state, body), name=name)

    def tick(self, name: str, **detail: Any) -> None:
        """A pass of `name` worked (and, optionally, what it wants /healthz to show)."""
        state = self._states.get(name)
        if state is None:
            return
        state.last_tick = self._clock()
        state.detail.update(detail)

    def note(self, name: str, **detail: Any) -> None:
        """Update what `name` shows without counting a pass."""
        state = self._states.get(name)
        if state is not None:
            state.detail.update(detail)

    def problems(self) -> list[str]:
        now = self._clock()
        return [problem for state in self._states.values() if (problem := state.problem(now))]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {name: state.as_json() for name, state in self._states.items()}

    async def _supervise(self, state: LoopState, body: Callable[[], Awaitable[None]]) -> None:
        delay = self._backoff_first
        while True:
            state.status, started = "running", self._clock()
            try:
                await body()
            except asyncio.CancelledError:
                state.status = "stopped"
                raise
            except Exception as error:
                state.status, state.restarts = "restarting", state.restarts + 1
                state.last_error = f"{type(error).__name__}: {error}"[:300]
                if (self._clock() - started).total_seconds() > 10 * self._backoff_max:
                    delay = self._backoff_first  # it ran well for a long while: a fresh failure
                log.exception("loop %s failed; restarting in %.0f s", state.name, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max)
                continue
            state.status = "stopped"
            return
