"""`siyu serve` processes on one database: one runs the scheduled jobs, another that
starts (even one that fails to bind its port) changes nothing of it, and when the leader
is killed outright a standby runs the jobs within 30 s."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from storage.engine import SessionFactory
from storage.models import SchedulerRun, utcnow
from tests.conftest import write_config
from tests.test_processes import free_port


@asynccontextmanager
async def serve(config: Path, log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    with log.open("wb") as output:  # a file, not a pipe nobody drains
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", "--config", str(config), cwd=config.parent,
            stdout=output, stderr=asyncio.subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def health(client: aiohttp.ClientSession, port: int) -> dict[str, Any] | None:
    try:
        async with client.get(f"http://127.0.0.1:{port}/healthz") as response:
            return await response.json()
    except (aiohttp.ClientError, ValueError):
        return None


async def role_of(client: aiohttp.ClientSession, port: int) -> tuple[str | None, str | None]:
    body = await health(client, port)
    scheduler = (body or {}).get("loops", {}).get("scheduler", {})
    return scheduler.get("role"), scheduler.get("holder")


async def wait_for(check, timeout: float) -> Any:  # noqa: ANN001
    async with asyncio.timeout(timeout):
        while not (found := await check()):
            await asyncio.sleep(0.2)
    return found


async def calendar_run(sessions: SessionFactory) -> SchedulerRun | None:
    async with sessions() as session:
        return await session.get(SchedulerRun, "content-calendar")


@pytest.mark.timeout(300)  # it waits for two minute boundaries
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_second_process_leaves_the_leaders_jobs_alone_and_a_standby_takes_over_a_killed_leader(
    db_url: str, tmp_path: Path, sessions: SessionFactory
) -> None:
    first_port, third_port = free_port(), free_port()
    configs = {}
    for name, port in (("first", first_port), ("second", first_port), ("third", third_port)):
        (tmp_path / name).mkdir()
        configs[name] = write_config(
            tmp_path / name, db_url, f"\n[server]\nport = {port}\n\n[scheduler]\ncheck_seconds = 1\nlease_seconds = 5\n"
        )
    async with aiohttp.ClientSession() as client, serve(configs["first"], tmp_path / "first.log") as first:
        await wait_for(lambda: _role(client, first_port, "leader"), 60)
        _, leader = await role_of(client, first_port)

        # A second `siyu serve` on the same port fails to bind and exits; a third stands by.
        async with serve(configs["second"], tmp_path / "second.log") as second:
            async with asyncio.timeout(60):
                assert await second.wait() != 0
        async with serve(configs["third"], tmp_path / "third.log") as third:
            await wait_for(lambda: _role(client, third_port, "standby"), 60)
            _, standby = await role_of(client, third_port)
            others_started = utcnow()

            # The leader's next every-minute run still happens, by the leader, undisturbed.
            ran = await wait_for(lambda: _ran_by(sessions, leader, after=others_started), 90)
            assert (await role_of(client, first_port))[0] == "leader"
            assert (await role_of(client, third_port))[0] == "standby"
            assert "no runner" not in (tmp_path / "first.log").read_text()

            first.send_signal(signal.SIGKILL)
            await first.wait()
            killed = utcnow()
            await wait_for(lambda: _role(client, third_port, "leader"), 30)  # within 30 s of the kill
            taken = await wait_for(lambda: _ran_by(sessions, standby, after=ran.finished_at), 90)
            # The first time due after the kill is the one the standby ran: none lost.
            assert taken.fired_at > ran.fired_at and (taken.fired_at - ran.fired_at).total_seconds() <= 120
            assert (taken.finished_at - max(killed, taken.fired_at)).total_seconds() <= 30
            third.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                assert await third.wait() == 0


async def _role(client: aiohttp.ClientSession, port: int, wanted: str) -> bool:
    return (await role_of(client, port))[0] == wanted


async def _ran_by(sessions: SessionFactory, holder: str | None, *, after: datetime | None) -> SchedulerRun | None:
    row = await calendar_run(sessions)
    if row is None or row.holder != holder or row.status != "done" or row.finished_at is None:
        return None
    return row if after is None or row.finished_at > after else None
