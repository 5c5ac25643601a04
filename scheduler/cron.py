"""The scheduler: a few fixed, named cron jobs, run by one process per database.

Jobs scan tables and enqueue work; they never talk to a platform themselves and are
never one-per-member, and every one is idempotent through outbox and task dedupe keys.

The schedule lives in code (APScheduler's `CronTrigger` only computes fire times); what
the database keeps is each job's last run (`scheduler_runs`), written through the async
engine, so nothing here blocks the event loop. One process leads (storage/scheduling.py:
a PostgreSQL advisory lock, a lease row on SQLite); the others check every
`check_seconds` and the first to find the leader gone takes over. A leader that takes
over — a start, a restart, a failover — first runs, once, each job whose last scheduled
time passed unrun, when that time is within the grace; then each job waits for its next
time. A job that raises is logged with its name; the schedule goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from storage.engine import SessionFactory
from storage.loops import Loops
from storage.metrics import SCHEDULER_LEADER, record_job
from storage.models import utcnow
from storage.scheduling import Leadership, last_run, record_run
from storage.tracing import new_request_id, traced

log = logging.getLogger(__name__)
TICK = timedelta(microseconds=1)
# Windows searched, newest first, for a job's latest time: a minute job is found in the
# first, a daily one in the second, without stepping through days minute by minute.
_LOOKBACK = (timedelta(hours=1), timedelta(days=1), timedelta(days=8))


@dataclass(frozen=True, slots=True)
class CronJob:
    name: str
    cron: str  # five fields: minute hour day month weekday
    run: Callable[[], Awaitable[object]]


def cron_problem(expression: str, zone: ZoneInfo) -> str | None:
    """What is wrong with a crontab line, or None when it is a valid one."""
    try:
        CronTrigger.from_crontab(expression, timezone=zone)
    except ValueError as error:
        return f"not a valid cron line ({error})"
    return None


def latest_fire_time(trigger: CronTrigger, after: datetime, now: datetime) -> datetime | None:
    """The trigger's last time in (after, now], or None."""
    for window in _LOOKBACK:
        start = max(after, now - window)
        latest = None
        fire = trigger.get_next_fire_time(None, start + TICK)
        while fire is not None and fire <= now:
            latest = fire
            fire = trigger.get_next_fire_time(None, fire + TICK)
        if latest is not None or start == after:
            return latest
    return None


class Scheduler:
    def __init__(
        self,
        jobs: Sequence[CronJob],
        zone: ZoneInfo,
        sessions: SessionFactory,
        leadership: Leadership,
        *,
        catch_up_seconds: int = 6 * 3600,
        check_seconds: float = 5.0,
        loops: Loops | None = None,
    ):
        self._jobs = list(jobs)
        self._triggers = {job.name: CronTrigger.from_crontab(job.cron, timezone=zone) for job in jobs}
        self._sessions = sessions
        self._leadership = leadership
        self._grace = timedelta(seconds=catch_up_seconds)
        self._check = check_seconds
        self._loops = loops or Loops()
        self._job_tasks: list[asyncio.Task[None]] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def leading(self) -> bool:
        return bool(self._job_tasks)

    def start(self) -> None:
        # Stalled: no leadership check for a while (each takes one short query).
        self._task = self._loops.run("scheduler", self._lead, stall_after=max(60.0, 6 * self._check))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _lead(self) -> None:
        """Check leadership every `check_seconds`: take over, keep leading or step down."""
        self._loops.note("scheduler", role="standby", holder=self._leadership.holder)
        try:
            while True:
                held = await self._leadership.hold()
                if held and not self.leading:
                    self._take_over()
                elif not held and self.leading:
                    log.warning("scheduler: another process leads now; standing by")
                    await self._step_down()
                self._loops.tick("scheduler", role="leader" if self.leading else "standby")
                await asyncio.sleep(self._check)
        finally:
            # An error (the database away) or the end: no jobs run without the lock.
            await self._step_down()
            with contextlib.suppress(Exception):
                await self._leadership.release()
            self._loops.note("scheduler", role="standby")

    def _take_over(self) -> None:
        log.info("scheduler: leading (%s); %d jobs", self._leadership.holder, len(self._jobs))
        SCHEDULER_LEADER.set(1)
        self._job_tasks = [asyncio.create_task(self._keep(job), name=f"job-{job.name}") for job in self._jobs]

    async def _step_down(self) -> None:
        tasks, self._job_tasks = self._job_tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if tasks:
            SCHEDULER_LEADER.set(0)

    async def _keep(self, job: CronJob) -> None:
        """Run `job` at each of its times while leading: first a missed one, if any."""
        trigger = self._triggers[job.name]
        try:
            missed = await self._missed(job.name, trigger)
        except Exception:
            log.exception("job %s: its last run could not be read; nothing caught up", job.name)
            missed = None
        if missed is not None:
            log.info("job %s: its %s run was missed; running it now", job.name, missed.isoformat())
            await self._fire(job, missed)
        after = utcnow()
        while True:
            fire = trigger.get_next_fire_time(None, after)
            if fire is None:
                return
            await _sleep_until(fire)
            after = max(fire + TICK, utcnow())
            late = utcnow() - fire
            if late > self._grace:  # the machine slept, or the loop was starved: let it go
                log.warning("job %s: its %s run is %.0f s late, past its grace; skipped",
                            job.name, fire.isoformat(), late.total_seconds())
                continue
            await self._fire(job, fire)
            after = max(after, utcnow())  # a run longer than the period coalesces

    async def _missed(self, name: str, trigger: CronTrigger) -> datetime | None:
        """The job's latest time since its last recorded run, when within the grace."""
        now = utcnow()
        async with self._sessions() as session:
            row = await last_run(session, name)
        if row is None:  # a new job (or a new database): count from now, catch nothing up
            await self._record(name, status="baseline", fired_at=now)
            return None
        latest = latest_fire_time(trigger, row.fired_at, now)
        if latest is None:
            return None
        if now - latest > self._grace:
            log.warning("job %s: its %s run was missed by more than the grace; skipped", name, latest.isoformat())
            await self._record(name, status="skipped", fired_at=latest)
            return None
        return latest

    async def _fire(self, job: CronJob, fire: datetime) -> None:
        """Run the job for its time `fire`; never raises (but for cancellation)."""
        try:
            if not await self._leadership.hold():
                log.warning("job %s: no longer leading; its %s run is left to the leader", job.name, fire.isoformat())
                return
        except Exception:
            log.warning("job %s: leadership unknown (database away); not run", job.name, exc_info=True)
            return
        await self._record(job.name, status="running", started_at=utcnow())
        status, detail = "done", None
        with traced(new_request_id(f"job-{job.name}")):  # the rows a run queues carry its id
            log.info("job %s starting", job.name)
            started = time.perf_counter()
            try:
                result = await job.run()
            except Exception as error:
                log.exception("job %s failed", job.name)
                status, detail = "failed", f"{type(error).__name__}: {error}"[:1000]
            else:
                detail = str(result)[:1000]
                log.info("job %s done: %s", job.name, result)
            record_job(job.name, status, time.perf_counter() - started)
        await self._record(job.name, status=status, fired_at=fire, finished_at=utcnow(), detail=detail)

    async def _record(self, name: str, **fields: object) -> None:
        try:
            async with self._sessions() as session, session.begin():
                await record_run(session, name, holder=self._leadership.holder, **fields)  # type: ignore[arg-type]
        except Exception:  # the run is not lost: an unrecorded run is caught up again (jobs are idempotent)
            log.warning("job %s: could not record its run", name, exc_info=True)


async def _sleep_until(when: datetime) -> None:
    # In steps, against the wall clock: a suspended machine or a clock change is noticed.
    while (left := (when - utcnow()).total_seconds()) > 0:
        await asyncio.sleep(min(left, 30.0))
