"""The scheduler keeps its schedule in the database: a run missed while the server was
down is caught up once on start (within the grace period), never twice."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from scheduler.cron import CronJob, Scheduler
from storage.engine import create_sync_engine
from storage.migrate import upgrade
from tests.conftest import eventually

ZONE = ZoneInfo("Asia/Shanghai")
DAILY = "0 3 * * *"


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'siyu.db'}"
    upgrade(url)
    return url


def set_next_run(url: str, name: str, when: datetime) -> None:
    """What a stop over the job's time looks like in the store: its next run has passed."""
    store = SQLAlchemyJobStore(engine=create_sync_engine(url))
    store.start(BackgroundScheduler(timezone=ZONE), "default")  # only to read jobs back
    job = store.lookup_job(name)
    assert job is not None
    job._modify(next_run_time=when)
    store.update_job(job)
    store.engine.dispose()


class Counter:
    def __init__(self) -> None:
        self.runs = 0

    async def __call__(self) -> str:
        self.runs += 1
        return f"run {self.runs}"


async def start_and_stop(url: str, counter: Counter, settle: float = 0.3, grace: int = 3600) -> dict[str, object]:
    scheduler = Scheduler([CronJob("sweep", DAILY, counter)], ZONE, store_url=url, catch_up_seconds=grace)
    scheduler.start()
    await asyncio.sleep(settle)  # let anything due fire
    times = scheduler.next_run_times()
    scheduler.close()
    return times


async def test_a_run_missed_while_down_is_caught_up_once_and_not_again(store: str) -> None:
    counter = Counter()
    first = await start_and_stop(store, counter)
    assert counter.runs == 0 and first["sweep"] > datetime.now(timezone.utc)  # type: ignore[operator]

    # The server was stopped over 03:00: the stored next run is ten minutes in the past.
    set_next_run(store, "sweep", datetime.now(timezone.utc) - timedelta(minutes=10))
    scheduler = Scheduler([CronJob("sweep", DAILY, counter)], ZONE, store_url=store)
    scheduler.start()
    await eventually(lambda: _ran(counter, 1))
    after = scheduler.next_run_times()["sweep"]
    scheduler.close()
    assert after > datetime.now(timezone.utc)  # type: ignore[operator]

    await start_and_stop(store, counter)  # a restart after the catch-up runs nothing
    assert counter.runs == 1


async def test_several_missed_runs_coalesce_and_a_run_beyond_the_grace_is_skipped(store: str) -> None:
    counter = Counter()
    await start_and_stop(store, counter)
    set_next_run(store, "sweep", datetime.now(timezone.utc) - timedelta(days=3, minutes=-30))
    await start_and_stop(store, counter, grace=4 * 24 * 3600)  # three days missed, one run
    assert counter.runs == 1
    set_next_run(store, "sweep", datetime.now(timezone.utc) - timedelta(hours=7))
    times = await start_and_stop(store, counter, grace=60)  # hours late, a minute's grace: skipped
    assert counter.runs == 1 and times["sweep"] > datetime.now(timezone.utc)  # type: ignore[operator]


async def test_a_changed_schedule_replaces_the_stored_one_and_old_jobs_go(store: str) -> None:
    counter = Counter()
    await start_and_stop(store, counter)
    scheduler = Scheduler([CronJob("recompute", "30 4 * * *", counter)], ZONE, store_url=store)
    scheduler.start()
    names = set(scheduler.next_run_times())
    scheduler.close()
    assert names == {"recompute"}
    scheduler = Scheduler([CronJob("recompute", "45 5 * * *", counter)], ZONE, store_url=store)
    scheduler.start()
    nxt = scheduler.next_run_times()["recompute"]
    scheduler.close()
    assert nxt.astimezone(ZONE).strftime("%H:%M") == "05:45"  # type: ignore[union-attr]


async def _ran(counter: Counter, times: int) -> bool:
    return counter.runs >= times
