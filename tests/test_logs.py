"""Log lines a machine can read: JSON, the configured zone's time, a request id from a
callback to its send, a closed tab as one INFO line, quiet libraries, and commands that
stop quietly when their reader goes away."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.cli.logs import configure_logging
from bot.settings.model import Settings, load_settings
from bot.shared.keys import SESSIONS
from bot.web.app import build_app
from storage.engine import create_database_engine, session_factory
from storage.migrate import upgrade
from storage.models import utcnow
from storage.outbox import NewOutboxMessage, enqueue
from storage.tracing import traced
from tests.conftest import eventually, start_server, write_config
from tests.fakes.wecom_cloud import FakeWeComCloud
from tests.wecom_harness import WELCOME, Corp, contact_event, wecom_config

ALICE = "wmAJ2GCAAAXtWyujaWJHDDGi0mLOGS"
SHANGHAI_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00$")


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """What configure_logging writes, for the length of a test; the old setup after."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    buffer = io.StringIO()
    yield buffer
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name in ("apscheduler", "aiohttp.access", "alembic"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def settings_with(tmp_path: Path, url: str, extra: str) -> Settings:
    return load_settings(write_config(tmp_path, url, extra))


async def test_json_lines_carry_one_request_id_from_the_callback_to_the_welcome(
    cloud: FakeWeComCloud, db_url: str, tmp_path: Path, http: aiohttp.ClientSession, logged: io.StringIO,
) -> None:
    settings = settings_with(tmp_path, db_url, wecom_config(cloud.base_url) + '\n[log]\nlevel = "DEBUG"\nformat = "json"\n')
    configure_logging(settings, stream=logged)
    running = await start_server(build_app(settings), http)
    try:
        corp = Corp(cloud, running, running.app[SESSIONS])
        code = cloud.issue_welcome_code(ALICE, "zhangsan")
        assert (await corp.callback(contact_event("add_external_contact", ALICE, WelcomeCode=code)))[0] == 200
        await eventually(lambda: _true(len(cloud.deliveries(WELCOME)) == 1))
        await eventually(lambda: _true("(welcome): sent" in logged.getvalue()))
        # The welcome may go ahead of the row's own handling (handlers/early_welcome.py).
        await eventually(lambda: _true("handled inbox row" in logged.getvalue()))
    finally:
        await running.stop()
    lines = [json.loads(line) for line in logged.getvalue().splitlines()]  # every line is one JSON object
    assert all(SHANGHAI_TIME.match(line["time"]) for line in lines)
    assert {"time", "level", "logger", "message", "request_id"} <= set(lines[0])
    (stored,) = [line for line in lines if line["message"] == "stored a wecom callback: add_external_contact"]
    rid = stored["request_id"]
    traced = [line for line in lines if line["request_id"] == rid]
    loggers = {line["logger"] for line in traced}
    assert {"bot.shared.callbacks", "handlers.dispatcher", "scheduler.delivery"} <= loggers
    assert any("(welcome): sent" in line["message"] for line in traced)


def test_text_lines_use_the_configured_zone_and_name_the_request(tmp_path: Path, logged: io.StringIO) -> None:
    settings = settings_with(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", "")
    configure_logging(settings.model_copy(update={"timezone": "America/New_York"}), stream=logged)
    with traced("abc123"):
        logging.getLogger("siyu.test").warning("one line")
    logging.getLogger("siyu.test").warning("another")
    first, second = logged.getvalue().splitlines()
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-0[45]:00 WARNING siyu.test \[abc123\]: one line$", first)
    assert second.endswith(" WARNING siyu.test: another")


def test_library_chatter_is_quiet_unless_asked(tmp_path: Path, logged: io.StringIO) -> None:
    url = f"sqlite:///{tmp_path / 'siyu.db'}"
    configure_logging(settings_with(tmp_path, url, ""), stream=logged)
    logging.getLogger("apscheduler.scheduler").info('Added job "content-calendar"')
    logging.getLogger("aiohttp.access").info("GET /healthz 200")
    logging.getLogger("siyu.test").info("ours")
    assert logged.getvalue().count("\n") == 1 and "ours" in logged.getvalue()
    configure_logging(settings_with(tmp_path, url, '[log]\nlibrary_level = "INFO"\n[server]\naccess_log = true\n'),
                      stream=logged)
    logging.getLogger("apscheduler.scheduler").info('Added job "content-calendar"')
    logging.getLogger("aiohttp.access").info("GET /healthz 200")
    assert "content-calendar" in logged.getvalue() and "/healthz" in logged.getvalue()


async def test_a_closed_sandbox_tab_is_one_info_line(
    settings: Settings, http: aiohttp.ClientSession, logged: io.StringIO
) -> None:
    configure_logging(settings, stream=logged)
    running = await start_server(build_app(settings), http)
    try:
        async with aiohttp.ClientSession() as tab:
            async with tab.get(f"{running.base}/sandbox/events", params={"member": "王芳"}) as stream:
                await stream.content.readline()  # the stream is open
        await running.post_message("王芳", "你好")  # the reply is written to the closed tab
        await eventually(lambda: _true("went away" in logged.getvalue()))
    finally:
        await running.stop()
    text = logged.getvalue()
    assert "ERROR" not in text and "Traceback" not in text
    (gone,) = [line for line in text.splitlines() if "went away" in line]
    assert " INFO " in gone


def test_a_client_reset_that_aiohttp_logs_becomes_one_info_line(tmp_path: Path, logged: io.StringIO) -> None:
    configure_logging(settings_with(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", ""), stream=logged)
    try:
        raise ConnectionResetError("Cannot write to closing transport")
    except ConnectionResetError:
        logging.getLogger("aiohttp.server").exception("Error handling request from %s", "127.0.0.1")
    (line,) = logged.getvalue().splitlines()
    assert " INFO aiohttp.server: client went away (Cannot write to closing transport)" in line


def test_a_command_whose_reader_goes_away_stops_quietly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'siyu.db'}"
    upgrade(url)
    config = write_config(tmp_path, url)

    async def fill() -> None:
        engine = create_database_engine(url)
        async with session_factory(engine)() as session, session.begin():
            await enqueue(session, [
                NewOutboxMessage(f"row-{n}", "sandbox", f"会员{n}", "service", "你好" * 40) for n in range(1500)
            ], utcnow())
        await engine.dispose()

    asyncio.run(fill())
    with subprocess.Popen(
        [sys.executable, "-m", "bot", "outbox", "list", "--limit", "1500", "--json", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.readline()  # `| head -1`
        process.stdout.close()
        errors = process.stderr.read().decode()
        assert process.wait(timeout=60) == 141
    assert errors == ""


async def _true(value: bool) -> bool:
    return value
