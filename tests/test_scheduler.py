"""The scheduler: one leader per database, a run missed while no process led is caught up
once within its grace, a job that raises is logged by name and the rest goes on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from scheduler.cron import CronJob, Scheduler, latest_fire_time
from storage.engine import SessionFactory
from storage.loops import Loops
from storage.models import RuntimeLease, SchedulerRun, utcnow
from storage.scheduling import AdvisoryLock, LeaseLock, Leadership
from tests.conftest import eventually

ZONE = ZoneInfo("Asia/Shanghai")


class Counter:
    def __init__(self) -> None:
        self.runs = 0

    async def __call__(self) -> str:
        self.runs += 1
        return f"run {self.runs}"


def daily_at(moment: datetime) -> str:
    """A daily cron line firing at `moment`'s local minute."""
    local = moment.astimezone(ZONE)
    return f"{local.minute} {local.hour} * * *"


def leadership_for(sessions: SessionFactory, url: str, holder: str) -> Leadership:
    if url.startswith("sqlite"):
        return LeaseLock(sessions, timedelta(seconds=1), holder=holder)
    return AdvisoryLock(url, holder=holder)


@pytest.fixture
async def run_scheduler(sessions: SessionFactory, db_url: str) -> AsyncIterator:
    started: list[Scheduler] = []

    def start(jobs: list[CronJob], holder: str = "one", grace: int = 3600, loops: Loops | None = None) -> Scheduler:
        scheduler = Scheduler(jobs, ZONE, sessions, leadership_for(sessions, db_url, holder),
                              catch_up_seconds=grace, check_seconds=0.1, loops=loops)
        scheduler.start()
        started.append(scheduler)
        return scheduler

    yield start
    for scheduler in started:
        await scheduler.close()


async def seed_last_run(sessions: SessionFactory, job: str, fired_at: datetime) -> None:
    async with sessions() as session, session.begin():
        session.add(SchedulerRun(job=job, fired_at=fired_at, status="done", holder="before"))


async def row(sessions: SessionFactory, job: str) -> SchedulerRun | None:
    async with sessions() as session:
        return await session.get(SchedulerRun, job)


async def test_a_daily_run_missed_while_no_process_led_runs_once_on_takeover(
    sessions: SessionFactory, run_scheduler
) -> None:
    fire = utcnow() - timedelta(minutes=10)  # today's time passed ten minutes ago, unrun
    await seed_last_run(sessions, "sweep", fire - timedelta(days=1))
    counter = Counter()
    scheduler = run_scheduler([CronJob("sweep", daily_at(fire), counter)])
    await eventually(lambda: _done(sessions, "sweep"))
    assert counter.runs == 1 and scheduler.leading
    ran = await row(sessions, "sweep")
    assert ran is not None and ran.holder == "one" and ran.detail == "run 1"
    assert ran.fired_at == fire.replace(second=0, microsecond=0)
    await scheduler.close()

    again = run_scheduler([CronJob("sweep", daily_at(fire), counter)], holder="two")  # a restart: nothing is due
    await eventually(lambda: _leading(again))
    await asyncio.sleep(0.3)
    assert counter.runs == 1


async def test_a_missed_run_beyond_its_grace_is_skipped_and_a_new_job_catches_nothing_up(
    sessions: SessionFactory, run_scheduler
) -> None:
    fire = utcnow() - timedelta(minutes=10)
    await seed_last_run(sessions, "sweep", fire - timedelta(days=3))  # three days missed
    late, new = Counter(), Counter()
    scheduler = run_scheduler([CronJob("sweep", daily_at(fire), late), CronJob("fresh", daily_at(fire), new)], grace=60)
    await eventually(lambda: _status(sessions, "sweep", "skipped"))
    await eventually(lambda: _status(sessions, "fresh", "baseline"))
    await asyncio.sleep(0.3)
    assert late.runs == 0 and new.runs == 0 and scheduler.leading


async def test_a_job_that_raises_is_logged_by_name_and_the_others_run(
    sessions: SessionFactory, run_scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    fire = utcnow() - timedelta(minutes=5)
    for name in ("broken", "fine"):
        await seed_last_run(sessions, name, fire - timedelta(days=1))

    async def broken() -> None:
        raise RuntimeError("the table is gone")

    counter, loops = Counter(), Loops()
    with caplog.at_level(logging.ERROR, logger="scheduler.cron"):
        scheduler = run_scheduler([CronJob("broken", daily_at(fire), broken), CronJob("fine", daily_at(fire), counter)],
                                  loops=loops)
        await eventually(lambda: _status(sessions, "broken", "failed"))
        await eventually(lambda: _done(sessions, "fine"))
    assert any("job broken failed" in record.getMessage() for record in caplog.records)
    failed = await row(sessions, "broken")
    assert failed is not None and "the table is gone" in (failed.detail or "")
    assert failed.fired_at == fire.replace(second=0, microsecond=0)  # not retried until its next time
    assert counter.runs == 1 and scheduler.leading and loops.problems() == []


async def test_one_scheduler_leads_and_another_takes_over_when_it_stops(
    sessions: SessionFactory, run_scheduler
) -> None:
    first_loops, second_loops = Loops(), Loops()
    first = run_scheduler([CronJob("sweep", "0 3 * * *", Counter())], holder="first", loops=first_loops)
    await eventually(lambda: _leading(first))
    second = run_scheduler([CronJob("sweep", "0 3 * * *", Counter())], holder="second", loops=second_loops)
    await asyncio.sleep(0.5)  # several checks: the second keeps standing by
    assert first.leading and not second.leading
    assert second_loops.snapshot()["scheduler"]["role"] == "standby"
    await first.close()
    await eventually(lambda: _leading(second), timeout=5)
    assert second_loops.snapshot()["scheduler"]["role"] == "leader"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_on_sqlite_a_dead_leaders_lease_is_taken_once_it_runs_out(sessions: SessionFactory, run_scheduler) -> None:
    # A leader killed outright leaves its lease behind, renewed a moment ago.
    async with sessions() as session, session.begin():
        session.add(RuntimeLease(name="scheduler", holder="killed", expires_at=utcnow() + timedelta(seconds=1.5)))
    scheduler = run_scheduler([CronJob("sweep", "0 3 * * *", Counter())])
    await asyncio.sleep(0.5)
    assert not scheduler.leading  # the lease still runs
    await eventually(lambda: _leading(scheduler), timeout=5)
    async with sessions() as session:
        lease = await session.get(RuntimeLease, "scheduler")
    assert lease is not None and lease.holder == "one" and lease.expires_at > utcnow()


def test_the_latest_time_is_found_without_walking_every_minute_of_the_grace() -> None:
    now = datetime(2026, 12, 2, 12, 0, 30, tzinfo=ZONE)
    minutely = CronTrigger.from_crontab("* * * * *", timezone=ZONE)
    assert latest_fire_time(minutely, now - timedelta(days=7), now) == now.replace(second=0)
    daily = CronTrigger.from_crontab("0 3 * * *", timezone=ZONE)
    assert latest_fire_time(daily, now - timedelta(days=5), now) == datetime(2026, 12, 2, 3, 0, tzinfo=ZONE)
    assert latest_fire_time(daily, datetime(2026, 12, 2, 3, 0, tzinfo=ZONE), now) is None  # already run
    weekly = CronTrigger.from_crontab("0 3 * * mon", timezone=ZONE)  # 2 Dec 2026 is a Wednesday
    assert latest_fire_time(weekly, now - timedelta(days=7), now) == datetime(2026, 11, 30, 3, 0, tzinfo=ZONE)


async def _done(sessions: SessionFactory, job: str) -> bool:
    return await _status(sessions, job, "done")


async def _status(sessions: SessionFactory, job: str, status: str) -> bool:
    found = await row(sessions, job)
    return found is not None and found.status == status and found.holder != "before"


async def _leading(scheduler: Scheduler) -> bool:
    return scheduler.leading
