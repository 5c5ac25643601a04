"""How well tasks get done: completion and on-time rates, pure arithmetic over tasks
already due. A task counts once its due day has come; it is on time when it was done by
the end of its due day (local time)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class TaskFact:
    due: date
    status: str  # open | done | skipped
    done_on: date | None  # the local day it was closed


@dataclass(frozen=True, slots=True)
class Rates:
    due: int  # tasks whose due day has come
    done: int
    on_time: int
    skipped: int
    overdue: int  # still open after their due day

    @property
    def completion(self) -> float | None:
        """Done of those due. Skipped tasks are counted apart (`skipped`): skipping
        everything is not 100 % done."""
        return self.done / self.due if self.due else None

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.due if self.due else None


def rates(facts: Iterable[TaskFact], today: date) -> Rates:
    due = done = on_time = skipped = overdue = 0
    for fact in facts:
        if fact.due > today:
            continue  # not due yet: neither done early nor late counts against anyone
        due += 1
        if fact.status == "done":
            done += 1
            on_time += fact.done_on is not None and fact.done_on <= fact.due
        elif fact.status == "skipped":
            skipped += 1
        elif fact.due < today:
            overdue += 1
    return Rates(due, done, on_time, skipped, overdue)
