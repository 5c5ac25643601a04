"""A job's cron line changed while the scheduler runs (an edit in the console): the
leader's next run moves at once, a new time in the current minute runs, a time that
already ran does not run again, and an invalid line leaves the old one in force."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from bot.settings.model import load_settings
from bot.shared.keys import SCHEDULER
from bot.web.app import build_app
from scheduler.cron import CronJob, Scheduler
from storage.config_docs import current_documents, save_document
from storage.engine import SessionFactory
from storage.models import SchedulerRun, utcnow
from tests.conftest import RunningServer, eventually, start_server, write_config
from tests.test_scheduler import ZONE, Counter, daily_at, leadership_for


@pytest.fixture
async def leader(sessions: SessionFactory, db_url: str) -> AsyncIterator:
    started: list[Scheduler] = []

    async def start(jobs: list[CronJob]) -> Scheduler:
        scheduler = Scheduler(jobs, ZONE, sessions, leadership_for(sessions, db_url, "one"), check_seconds=0.1)
        scheduler.start()
        started.append(scheduler)
        await eventually(lambda: _next_known(scheduler, jobs[0].name))
        return scheduler

    yield start
    for scheduler in started:
        await scheduler.close()


async def _next_known(scheduler: Scheduler, name: str) -> bool:
    return scheduler.next_run(name) is not None


async def _not_at_a_minutes_end() -> None:
    """These tests change a line to the current minute: leave room before the next one."""
    if utcnow().second >= 50:
        await asyncio.sleep(61 - utcnow().second)


def _local(moment: datetime | None) -> datetime | None:
    return moment.astimezone(ZONE) if moment is not None else None


async def test_a_new_time_in_this_minute_runs_once_and_the_next_run_moves(
    sessions: SessionFactory, leader
) -> None:
    await _not_at_a_minutes_end()
    now = utcnow()
    later = now + timedelta(hours=2)
    counter = Counter()
    scheduler = await leader([CronJob("digest", daily_at(later), counter)])
    assert scheduler.next_run("digest") == later.replace(second=0, microsecond=0)

    assert scheduler.reschedule({"digest": daily_at(now)}) == ["digest"]  # due this very minute
    await eventually(lambda: _ran(counter, 1))
    tomorrow = (now + timedelta(days=1)).replace(second=0, microsecond=0)
    await eventually(lambda: _next_is(scheduler, "digest", tomorrow))
    async with sessions() as session:
        run = await session.get(SchedulerRun, "digest")
    assert run is not None and run.status == "done" and run.fired_at == now.replace(second=0, microsecond=0)

    # Another line that also names this minute: what ran under the old one does not run again.
    local = now.astimezone(ZONE)
    assert scheduler.reschedule({"digest": f"{local.minute} {local.hour} * * 0-6"}) == ["digest"]
    await asyncio.sleep(0.5)
    assert counter.runs == 1
    assert scheduler.next_run("digest") == tomorrow


async def test_a_change_while_the_job_runs_lets_it_finish_and_does_not_run_it_again(
    sessions: SessionFactory, leader
) -> None:
    await _not_at_a_minutes_end()
    now = utcnow()
    started, release, runs = asyncio.Event(), asyncio.Event(), []

    async def slow() -> str:
        runs.append(utcnow())
        started.set()
        await release.wait()
        return "done slowly"

    scheduler = await leader([CronJob("slow", daily_at(now + timedelta(hours=2)), slow)])
    scheduler.reschedule({"slow": daily_at(now)})
    await asyncio.wait_for(started.wait(), 10)
    local = now.astimezone(ZONE)
    scheduler.reschedule({"slow": f"{local.minute} {local.hour} * * 0-6"})  # mid-run, naming this minute again
    release.set()
    tomorrow = (now + timedelta(days=1)).replace(second=0, microsecond=0)
    await eventually(lambda: _next_is(scheduler, "slow", tomorrow))
    await asyncio.sleep(0.5)
    assert len(runs) == 1
    async with sessions() as session:
        run = await session.get(SchedulerRun, "slow")
    assert run is not None and (run.status, run.detail) == ("done", "done slowly")


async def test_a_later_time_waits_and_an_invalid_line_keeps_the_old_one(leader) -> None:
    counter = Counter()
    first = utcnow() + timedelta(hours=3)
    scheduler = await leader([CronJob("care-scan", daily_at(first), counter), CronJob("other", "0 3 * * *", Counter())])
    moved = utcnow() + timedelta(hours=5)
    assert scheduler.reschedule({"care-scan": daily_at(moved), "not-a-job": "* * * * *"}) == ["care-scan"]
    await eventually(lambda: _next_is(scheduler, "care-scan", moved.replace(second=0, microsecond=0)))

    assert scheduler.reschedule({"care-scan": "61 25 * * *"}) == []
    assert scheduler.cron_lines()["care-scan"] == daily_at(moved)
    await asyncio.sleep(0.3)
    assert scheduler.next_run("care-scan") == moved.replace(second=0, microsecond=0) and counter.runs == 0
    assert scheduler.reschedule({"care-scan": daily_at(moved)}) == []  # the same line: nothing to do


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_console_edit_of_the_care_scan_time_reaches_the_running_scheduler(
    db_url: str, tmp_path: Path, sessions: SessionFactory
) -> None:
    config = write_config(tmp_path, db_url, """
        [scheduler]
        check_seconds = 0.2
        lease_seconds = 1

        [care]
        scan_cron = "5 6 * * *"
    """)
    async with aiohttp.ClientSession() as http:
        server: RunningServer = await start_server(build_app(load_settings(config)), http)
        try:
            scheduler: Scheduler = server.app[SCHEDULER]
            await eventually(lambda: _next_known(scheduler, "care-scan"))
            assert _local(scheduler.next_run("care-scan")).strftime("%H:%M") == "06:05"  # type: ignore[union-attr]

            async with sessions() as session, session.begin():
                body = (await current_documents(session))["care"].body | {"scan_cron": "45 21 * * *"}
                await save_document(session, "care", body, source="console", author="ops")
            await eventually(lambda: _next_at(scheduler, "care-scan", "21:45"), timeout=10)
            assert scheduler.cron_lines()["care-scan"] == "45 21 * * *"
        finally:
            await server.stop()

        # A restart keeps the console's line, not the file's.
        server = await start_server(build_app(load_settings(config)), http)
        try:
            scheduler = server.app[SCHEDULER]
            await eventually(lambda: _next_known(scheduler, "care-scan"), timeout=10)
            assert _local(scheduler.next_run("care-scan")).strftime("%H:%M") == "21:45"  # type: ignore[union-attr]
        finally:
            await server.stop()


async def _ran(counter: Counter, runs: int) -> bool:
    return counter.runs == runs


async def _next_is(scheduler: Scheduler, name: str, when: datetime) -> bool:
    return scheduler.next_run(name) == when


async def _next_at(scheduler: Scheduler, name: str, clock: str) -> bool:
    moment = _local(scheduler.next_run(name))
    return moment is not None and moment.strftime("%H:%M") == clock


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_digest_time_saved_in_the_console_moves_the_job_and_a_bad_line_is_refused(
    db_url: str, tmp_path: Path
) -> None:
    import re

    from tests.console_harness import CONSOLE_CONFIG, PASSWORD, ConsoleClient

    config = write_config(tmp_path, db_url, CONSOLE_CONFIG + """
        [scheduler]
        check_seconds = 0.2
        lease_seconds = 1
    """)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        server = await start_server(build_app(load_settings(config)), http)
        try:
            scheduler: Scheduler = server.app[SCHEDULER]
            await eventually(lambda: _next_at(scheduler, "staff-digest", "08:00"))
            ops = ConsoleClient(server.base, http)
            token = re.search(r'name="csrf-token" content="([^"]+)"', await ops.get("/admin/login"))
            assert token
            async with http.post(server.base + "/admin/login", data={
                    "login": "ops", "password": PASSWORD, "csrf": token.group(1), "next": ""}) as response:
                assert response.status == 200 and response.url.path != "/admin/login"

            page = await ops.post("/admin/settings/tasks", {"toml": 'digest_cron = "61 7 * * *"\n'}, expect=400)
            assert "digest_cron" in page
            await asyncio.sleep(0.5)
            assert scheduler.cron_lines()["staff-digest"] == "0 8 * * *"

            await ops.post("/admin/settings/tasks", {"toml": 'digest_cron = "30 7 * * *"\n', "note": "早点发"})
            await eventually(lambda: _next_at(scheduler, "staff-digest", "07:30"), timeout=10)
        finally:
            await server.stop()
