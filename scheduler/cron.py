"""The scheduler: a few fixed, named cron jobs on APScheduler, in the configured zone.

Jobs scan tables and enqueue work; they never talk to a platform themselves and are
never one-per-member. Their schedule is kept in the project's database (APScheduler's
SQLAlchemy job store, table `apscheduler_jobs`), so a run that fell while the server was
down is caught up once on start — coalesced, and only within the grace period — and
never twice: every job is idempotent through outbox and task dedupe keys anyway.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from storage.engine import create_sync_engine
from storage.metrics import SCHEDULER_LEADER, record_job
from storage.tracing import new_request_id, traced

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


# A stored job names its function by import path, so it cannot hold our closures: it
# names the scheduler that runs it (fresh each start) and the job, and finds them here.
_RUNNING: dict[str, dict[str, CronJob]] = {}


async def run_job(scheduler_key: str, name: str) -> None:
    job = _RUNNING.get(scheduler_key, {}).get(name)
    if job is None:
        log.warning("job %s has no runner in this process; skipped", name)
        return
    with traced(new_request_id(f"job-{name}")):  # the rows a run queues carry its id
        log.info("job %s starting", name)
        started = time.perf_counter()
        try:
            result = await job.run()
        except Exception:
            log.exception("job %s failed", name)
            record_job(name, "failed", time.perf_counter() - started)
            return
        record_job(name, "done", time.perf_counter() - started)
        log.info("job %s done: %s", name, result)


class Scheduler:
    def __init__(
        self,
        jobs: Sequence[CronJob],
        zone: ZoneInfo,
        *,
        store_url: str | None = None,
        catch_up_seconds: int = 6 * 3600,
    ):
        """`store_url`: the database that keeps the schedule; None keeps it in memory
        (a run missed while stopped is then simply skipped)."""
        self._key = uuid.uuid4().hex
        self._jobs = {job.name: job for job in jobs}
        self._zone = zone
        self._grace = catch_up_seconds
        self._engine = create_sync_engine(store_url) if store_url else None
        stores = {"default": SQLAlchemyJobStore(engine=self._engine)} if self._engine else {}
        self._scheduler = AsyncIOScheduler(timezone=zone, jobstores=stores)

    def start(self) -> None:
        _RUNNING[self._key] = self._jobs
        # Paused first, so stored jobs can be brought up to date before anything is due.
        self._scheduler.start(paused=True)
        for name, job in self._jobs.items():
            trigger = CronTrigger.from_crontab(job.cron, timezone=self._zone)
            stored = self._scheduler.get_job(name)
            if stored is not None and str(stored.trigger) == str(trigger):
                # Same schedule: keep its next run time, which may have passed while we were down.
                self._scheduler.modify_job(name, args=[self._key, name], misfire_grace_time=self._grace)
                continue
            self._scheduler.add_job(
                run_job, trigger, args=[self._key, name], id=name, name=name, replace_existing=True,
                coalesce=True, max_instances=1, misfire_grace_time=self._grace,
            )
        for stored in self._scheduler.get_jobs():
            if stored.id not in self._jobs:
                stored.remove()  # a job this version no longer has
        self._scheduler.resume()
        SCHEDULER_LEADER.set(1)

    def next_run_times(self) -> dict[str, object]:
        return {job.id: job.next_run_time for job in self._scheduler.get_jobs()}

    def close(self) -> None:
        SCHEDULER_LEADER.set(0)
        self._scheduler.shutdown(wait=False)
        _RUNNING.pop(self._key, None)
        if self._engine is not None:
            self._engine.dispose()
