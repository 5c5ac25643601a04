"""The scheduler: a few fixed, named cron jobs, run by one process per database.

Jobs scan tables and enqueue work; they never talk to a platform themselves and are
never one-per-member, and every one is idempotent through outbox and task dedupe keys.

The jobs live in code (APScheduler's `CronTrigger` only computes fire times); their cron
lines come from the configuration and `reschedule` swaps them while running (an edit in
the console reaches every process's scheduler within seconds, see bot/web/app.py). What
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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
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
        self._jobs = {job.name: job for job in jobs}
        self._zone = zone
        self._triggers = {job.name: CronTrigger.from_crontab(job.cron, timezone=zone) for job in jobs}
        self._changed: dict[str, asyncio.Event] = {}  # set when a job's line changed: its keeper looks again
        self._next: dict[str, datetime | None] = {}  # each running keeper's next time
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

    def cron_lines(self) -> dict[str, str]:
        return {name: job.cron for name, job in self._jobs.items()}

    def next_run(self, name: str) -> datetime | None:
        """When the job runs next, while this process leads (None otherwise)."""
        return self._next.get(name) if self.leading else None

    def reschedule(self, lines: Mapping[str, str]) -> list[str]:
        """Give jobs new cron lines (names not among the jobs are ignored); the names changed.

        A job waiting for its time looks again at once. Its next time is counted from the
        start of the current minute, or from its last run when that is later: a new time
        in this very minute still runs (it is not lost), and a time that already ran, under
        the old line, does not run again (it is not doubled). A line that is not a valid
        cron line is refused and the old one kept (the console refuses it before saving)."""
        changed = []
        for name, line in lines.items():
            job = self._jobs.get(name)
            if job is None or job.cron == line:
                continue
            if problem := cron_problem(line, self._zone):
                log.error("job %s: keeping %r; the new line %r is %s", name, job.cron, line, problem)
                continue
            self._jobs[name] = replace(job, cron=line)
            self._triggers[name] = CronTrigger.from_crontab(line, timezone=self._zone)
            log.info("job %s: now runs at %r (was %r)", name, line, job.cron)
            if (event := self._changed.get(name)) is not None:
                event.set()
            changed.append(name)
        return changed

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
        self._job_tasks = [asyncio.create_task(self._keep(name), name=f"job-{name}") for name in self._jobs]

    async def _step_down(self) -> None:
        tasks, self._job_tasks = self._job_tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._next.clear()
        if tasks:
            SCHEDULER_LEADER.set(0)

    async def _keep(self, name: str) -> None:
        """Run job `name` at each of its times while leading: first a missed one, if any.
        Its line is read afresh before each wait; a change ends the wait (`reschedule`)."""
        changed = self._changed[name] = asyncio.Event()
        try:
            missed = await self._missed(name, self._triggers[name])
        except Exception:
            log.exception("job %s: its last run could not be read; nothing caught up", name)
            missed = None
        handled: datetime | None = None  # the latest time this keeper ran or let go
        if missed is not None:
            log.info("job %s: its %s run was missed; running it now", name, missed.isoformat())
            await self._fire(self._jobs[name], missed)
            handled = missed
        after = utcnow()
        while True:
            if changed.is_set():
                changed.clear()
                after = await self._after_change(name, handled)
            fire = self._triggers[name].get_next_fire_time(None, after)
            self._next[name] = fire
            if fire is None:  # a line that never fires again: wait for another one
                await changed.wait()
                continue
            if not await _sleep_until(fire, changed):
                continue
            handled = fire
            after = max(fire + TICK, utcnow())
            late = utcnow() - fire
            if late > self._grace:  # the machine slept, or the loop was starved: let it go
                log.warning("job %s: its %s run is %.0f s late, past its grace; skipped",
                            name, fire.isoformat(), late.total_seconds())
                continue
            await self._fire(self._jobs[name], fire)
            after = max(after, utcnow())  # a run longer than the period coalesces

    async def _after_change(self, name: str, handled: datetime | None) -> datetime:
        """Where a changed line's next time is looked for: this minute's start, unless a
        run already happened since (here, or in the leader before this one)."""
        after = _minute_start(utcnow())
        if handled is not None:
            after = max(after, handled + TICK)
        try:
            async with self._sessions() as session:
                row = await last_run(session, name)
        except Exception:  # what this keeper ran is known anyway
            log.warning("job %s: its last run could not be read", name, exc_info=True)
            return after
        if row is not None and row.status != "baseline":  # a baseline marks a start, not a run
            after = max(after, row.fired_at + TICK)
        return after

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


def _minute_start(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


async def _sleep_until(when: datetime, changed: asyncio.Event) -> bool:
    """Wait until `when`: True then, False as soon as `changed` is set (the line changed)."""
    # In steps, against the wall clock: a suspended machine or a clock change is noticed.
    while not changed.is_set() and (left := (when - utcnow()).total_seconds()) > 0:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout=min(left, 30.0))
    return not changed.is_set()
