"""Shared fixtures: a real database (SQLite file, and PostgreSQL when SIYU_TEST_PG_URL is
set) and a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import create_engine, text

from bot.settings.model import Settings, load_settings
from bot.web.app import build_app
from storage.engine import SessionFactory, create_database_engine, session_factory, sync_url
from storage.migrate import upgrade

# The fake WeCom cloud and a server pointed at it (fixtures `cloud` and `corp`).
pytest_plugins = ["tests.wecom_harness", "tests.console_harness", "tests.browser_harness", "tests.sidebar_harness"]

PG_URL = os.environ.get("SIYU_TEST_PG_URL")

BASE_CONFIG = """\
timezone = "Asia/Shanghai"

[storage]
url = "{url}"

[platforms.sandbox]
enabled = true

# Tests run at any hour: quiet hours would hold marketing at night and not by day.
# tests/test_delivery_policy.py tests them with a clock of its own.
[delivery]
quiet_hours = false

[persona]
name = "小禾"
title = "禾麦烘焙的主理人"
signature = "小禾 · 禾麦烘焙"

[persona.tips]
"面包控" = "欧包放凉再切"

[[tags.rules]]
id = "interest-bread"
tag = "面包控"
group = "口味偏好"
keywords = ["面包", "吐司"]
"""


def _reset_postgres(url: str) -> None:
    engine = create_engine(sync_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated database of each kind."""
    if request.param == "postgresql":
        if not PG_URL:
            pytest.skip("PostgreSQL tests need SIYU_TEST_PG_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)")
        _reset_postgres(PG_URL)
        url = PG_URL
    else:
        url = f"sqlite:///{tmp_path / 'siyu.db'}"
    upgrade(url)
    return url


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[SessionFactory]:
    engine = create_database_engine(db_url)
    yield session_factory(engine)
    await engine.dispose()


def write_config(directory: Path, url: str, extra: str = "") -> Path:
    path = directory / "siyu.toml"
    path.write_text(BASE_CONFIG.format(url=url) + textwrap.dedent(extra), encoding="utf-8")
    return path


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return load_settings(write_config(tmp_path, db_url))


@dataclass
class RunningServer:
    app: web.Application
    base: str
    client: aiohttp.ClientSession
    runner: web.AppRunner

    async def post_message(self, member: str, text: str, client_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"member": member, "text": text}
        if client_id:
            body["id"] = client_id
        async with self.client.post(f"{self.base}/sandbox/messages", json=body) as response:
            assert response.status == 202, await response.text()
            return await response.json()

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_server(app: web.Application, client: aiohttp.ClientSession) -> RunningServer:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return RunningServer(app, f"http://127.0.0.1:{port}", client, runner)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def server(settings: Settings, http: aiohttp.ClientSession) -> AsyncIterator[RunningServer]:
    running = await start_server(build_app(settings), http)
    yield running
    await running.stop()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait until `check()` holds, failing the test after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)
