"""A client that trickles its headers or body in is cut off (issue 14 item 6): before,
500 half-sent POSTs were held forever and 1,100 exhausted the file descriptors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.settings.model import Settings, load_settings
from bot.web.app import build_app
from bot.web.limits import runner_options
from tests.conftest import RunningServer, write_config

# The liveness bound of these tests, far above the configured timeouts: without them the
# server would hold each connection until this bound fails the test.
PATIENCE = 30


@pytest.fixture
def impatient(db_url: str, tmp_path: Path) -> Settings:
    return load_settings(write_config(tmp_path, db_url, "[server]\nheader_timeout_seconds = 1\nbody_timeout_seconds = 1\n"))


@pytest.fixture
async def served(impatient: Settings, http: aiohttp.ClientSession) -> AsyncIterator[RunningServer]:
    # Started the way `siyu serve` runs it: the header bound is a runner option.
    runner = web.AppRunner(build_app(impatient), access_log=None, shutdown_timeout=5, **runner_options(impatient.server))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield RunningServer(runner.app, f"http://127.0.0.1:{runner.addresses[0][1]}", http, runner)
    await runner.cleanup()


async def read_all(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), PATIENCE)  # until the server closes


async def connect(server: RunningServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = server.base.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def test_a_body_that_stops_arriving_gets_408_and_the_connection_closes(served: RunningServer) -> None:
    reader, writer = await connect(served)
    writer.write(b"POST /sandbox/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{\"member\": \"a\", ")
    await writer.drain()
    answer = await read_all(reader)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    writer.close()
    async with served.client.get(f"{served.base}/healthz") as response:
        assert response.status == 200


async def test_headers_that_never_end_close_the_connection(served: RunningServer) -> None:
    reader, writer = await connect(served)
    writer.write(b"POST /sandbox/messages HTTP/1.1\r\nHost: x\r\n")  # and nothing more
    await writer.drain()
    assert await read_all(reader) == b""  # closed
    writer.close()


async def test_many_slow_bodies_are_all_released(served: RunningServer) -> None:
    connections = [await connect(served) for _ in range(50)]
    for _, writer in connections:
        writer.write(b"POST /sandbox/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{")
        await writer.drain()
    answers = await asyncio.gather(*(read_all(reader) for reader, _ in connections))
    assert all(answer.startswith(b"HTTP/1.1 408") for answer in answers)
    for _, writer in connections:
        writer.close()


async def test_a_prompt_client_is_not_affected(served: RunningServer) -> None:
    await served.post_message("王芳", "你好")
    async with served.client.get(f"{served.base}/healthz") as response:
        assert response.status == 200
