"""The scheduler: a few fixed, named cron jobs on APScheduler, in the configured zone.

Jobs scan tables and enqueue work; they never talk to a platform themselves and are
never one-per-member. Coalescing and a misfire grace time mean a job that could not run
on time (the process was busy or briefly down) runs once, not once per missed slot.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CronJob:
    name: str
    cron: str  # five fields: minute hour day month weekday
    run: Callable[[], Awaitable[object]]


def cron_problem(expression: str, zone: ZoneInfo) -> str | None:
    """What is wrong with a crontab line, or None when APScheduler accepts it."""
    try:
        CronTrigger.from_crontab(expression, timezone=zone)
    except ValueError as error:
        return f"not a valid cron line ({error})"
    return None


class Scheduler:
    def __init__(self, jobs: Sequence[CronJob], zone: ZoneInfo, misfire_grace_seconds: int = 3600):
        self._scheduler = AsyncIOScheduler(timezone=zone)
        for job in jobs:
            self._scheduler.add_job(
                self._logged(job),
                CronTrigger.from_crontab(job.cron, timezone=zone),
                id=job.name,
                name=job.name,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=misfire_grace_seconds,
            )

    @staticmethod
    def _logged(job: CronJob) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            log.info("job %s starting", job.name)
            try:
                result = await job.run()
            except Exception:
                log.exception("job %s failed", job.name)
                return
            log.info("job %s done: %s", job.name, result)

        return run

    def start(self) -> None:
        self._scheduler.start()

    def close(self) -> None:
        self._scheduler.shutdown(wait=False)
