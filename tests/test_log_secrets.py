"""Logs hold neither credentials nor personal data (issue 14 item 10): the access log
hides query values (task-link signatures, the official account's signature triple), and
SQL parameters stay out of DEBUG lines and error messages unless asked for."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.cli.logs import configure_logging
from bot.settings.model import Settings, load_settings
from bot.web.app import build_app
from storage.engine import create_database_engine, reveal_sql_parameters
from tests.conftest import write_config

PHONE = "13912345678"


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    buffer = io.StringIO()
    yield buffer
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name in ("apscheduler", "aiohttp.access", "alembic", "aiosqlite", "psycopg"):
        logging.getLogger(name).setLevel(logging.NOTSET)
    reveal_sql_parameters(False)


def settings_with(tmp_path: Path, url: str, extra: str) -> Settings:
    return load_settings(write_config(tmp_path, url, extra))


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_the_access_log_hides_query_secrets(
    tmp_path: Path, db_url: str, http: aiohttp.ClientSession, logged: io.StringIO, log_format: str
) -> None:
    settings = settings_with(tmp_path, db_url, f'[server]\naccess_log = true\n[log]\nformat = "{log_format}"\n')
    configure_logging(settings, stream=logged)
    # As `siyu serve` runs it: aiohttp's access logger on "aiohttp.access".
    runner = web.AppRunner(build_app(settings), access_log=logging.getLogger("aiohttp.access"))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        query = "signature=SIGSECRET1&timestamp=1714036504&nonce=NONCESECRET&echostr=ECHOSECRET"
        async with http.get(f"{base}/sandbox/history?member={PHONE}&{query}",
                            headers={"Referer": f"{base}/admin/tasks/7?as=zhangsan&until=1&sig=LINKSECRET"}) as response:
            await response.read()
        async with http.get(f"{base}/healthz?page=2") as response:
            await response.read()
    finally:
        await runner.cleanup()
    lines = logged.getvalue()
    assert "/sandbox/history?" in lines and "signature=…" in lines and "page=2" in lines, lines
    for secret in ("SIGSECRET1", "NONCESECRET", "ECHOSECRET", "LINKSECRET", PHONE):
        assert secret not in lines, secret


async def test_sql_parameters_stay_out_of_debug_lines_and_errors(
    tmp_path: Path, logged: io.StringIO
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    configure_logging(settings_with(tmp_path, url, '[log]\nlevel = "DEBUG"\n'), stream=logged)
    engine = create_database_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT :phone"), {"phone": PHONE})
            with pytest.raises(DBAPIError) as failure:
                await connection.execute(text("SELECT * FROM nowhere WHERE x = :phone"), {"phone": PHONE})
    finally:
        await engine.dispose()
    # aiosqlite logged each statement with its parameters at DEBUG; SQLAlchemy's error
    # message quoted them.
    assert PHONE not in logged.getvalue() and PHONE not in str(failure.value)


async def test_sql_parameters_are_logged_when_asked(tmp_path: Path, logged: io.StringIO) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    configure_logging(settings_with(tmp_path, url, '[log]\nlevel = "DEBUG"\nsql_parameters = true\n'), stream=logged)
    engine = create_database_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT :phone"), {"phone": PHONE})
    finally:
        await engine.dispose()
    assert PHONE in logged.getvalue()
