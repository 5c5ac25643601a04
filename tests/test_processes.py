"""`siyu demo` and `siyu serve` as real processes: start, chat, SIGTERM, exit 0."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from sqlalchemy import select

from bot.cli.demo_brand import DEMO_PASSWORD
from storage.engine import create_database_engine, session_factory
from storage.members import member_by_identity
from storage.models import InboxEntry, OutboxEntry
from storage.tags import tags_of
from tests.conftest import write_config
from tests.sse import next_event


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def siyu(args: Sequence[str], cwd: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def read_until(process: asyncio.subprocess.Process, marker: str, timeout: float = 60) -> str:
    seen = ""
    assert process.stdout is not None
    async with asyncio.timeout(timeout):
        while marker not in seen:
            line = await process.stdout.readline()
            if not line:
                raise AssertionError(f"siyu exited before printing {marker!r}:\n{seen}")
            seen += line.decode()
    return seen


async def test_demo_serves_a_chat_where_a_message_gets_a_persona_reply_and_a_tag(tmp_path: Path) -> None:
    port = free_port()
    async with siyu(["demo", "--dir", "shop", "--port", str(port)], cwd=tmp_path) as process:
        printed = await read_until(process, "/healthz")
        # 5,000 orders and those that followed care, which depend on the brand's today.
        seeded = re.search(r"seeded 500 members and (\d+) orders", printed)
        assert seeded is not None and 5000 < int(seeded.group(1)) < 5500, printed
        base = f"http://127.0.0.1:{port}"
        assert f"{base}/sandbox" in printed
        async with aiohttp.ClientSession() as client:
            async with client.get(f"{base}/sandbox") as page:
                assert page.status == 200 and "<html" in (await page.text()).lower()
            async with client.get(f"{base}/sandbox/members") as response:
                first = (await response.json())["members"][0]
            async with client.get(f"{base}/sandbox/events", params={"member": first["id"]}) as stream:
                async with client.post(f"{base}/sandbox/messages", json={"member": first["id"], "text": "有少糖的蛋糕吗"}) as sent:
                    assert sent.status == 202
                reply = await next_event(stream)
        assert "小禾" in reply["text"]
        # The operator console is there too, with the printed demo login.
        assert f"{base}/admin/" in printed and DEMO_PASSWORD in printed
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            async with browser.get(f"{base}/admin/") as login:
                token = re.search(r'name="csrf-token" content="([^"]+)"', await login.text())
            assert token is not None
            form = {"login": "ops", "password": DEMO_PASSWORD, "csrf": token.group(1), "next": "/admin/tasks"}
            async with browser.post(f"{base}/admin/login", data=form) as landed:
                assert landed.status == 200 and landed.url.path == "/admin/tasks"
                assert "生日" in await landed.text()  # today's birthday gift tasks from the care scan
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0

    config = tmp_path / "shop" / "siyu.toml"
    assert config.exists() and (tmp_path / "shop" / "siyu.db").exists()
    engine = create_database_engine("sqlite:///" + str(tmp_path / "shop" / "siyu.db"))
    async with session_factory(engine)() as session:
        member = await member_by_identity(session, "sandbox", first["id"])
        assert member is not None and member.id is not None
        assert {"蛋糕控", "控糖"} <= {t.name for t in await tags_of(session, member.id)}
    await engine.dispose()

    # Run again: the same data is reused, not seeded twice.
    async with siyu(["demo", "--dir", "shop", "--port", str(port)], cwd=tmp_path) as process:
        again = await read_until(process, "/sandbox")
        assert f"reusing 500 members and {seeded.group(1)} orders" in again, again
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0


async def test_serve_stops_on_sigterm_keeping_every_acknowledged_message(tmp_path: Path) -> None:
    url = "sqlite:///" + str(tmp_path / "siyu.db")
    port = free_port()
    config = write_config(tmp_path, url, f"[server]\nport = {port}\n")
    acknowledged: list[str] = []
    async with siyu(["serve", "--config", str(config)], cwd=tmp_path) as process:
        await read_until(process, "serving on")
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as client:

            async def send(n: int) -> None:
                body = {"member": f"会员{n % 5}", "text": f"第{n}条：吐司", "id": f"msg-{n}"}
                try:
                    async with client.post(f"{base}/sandbox/messages", json=body) as response:
                        if response.status == 202:
                            acknowledged.append(f"sandbox:会员{n % 5}:msg-{n}")
                except aiohttp.ClientError:
                    pass  # refused once shutdown began: never acknowledged, so not owed

            sends = [asyncio.create_task(send(n)) for n in range(300)]
            while len(acknowledged) < 50:
                await asyncio.sleep(0.005)
            process.send_signal(signal.SIGTERM)  # while requests are still in flight
            await asyncio.gather(*sends)
        async with asyncio.timeout(30):
            assert await process.wait() == 0
    assert len(acknowledged) >= 50
    engine = create_database_engine(url)
    async with session_factory(engine)() as session:
        stored = set((await session.execute(select(InboxEntry.key))).scalars().all())
    await engine.dispose()
    assert set(acknowledged) <= stored


async def test_a_webhook_process_and_a_worker_process_share_the_work(tmp_path: Path) -> None:
    url = "sqlite:///" + str(tmp_path / "siyu.db")
    web_port, work_port = free_port(), free_port()
    (tmp_path / "web").mkdir()
    (tmp_path / "work").mkdir()
    webhook = write_config(tmp_path / "web", url, f'[server]\nport = {web_port}\nrole = "webhook"\n')
    worker = write_config(tmp_path / "work", url, f'[server]\nport = {work_port}\nrole = "worker"\n')
    async with siyu(["serve", "--config", str(webhook)], cwd=tmp_path) as receiving:
        await read_until(receiving, "serving on")
        async with aiohttp.ClientSession() as client:
            body = {"member": "王芳", "text": "吐司还有吗", "id": "split-1"}
            async with client.post(f"http://127.0.0.1:{web_port}/sandbox/messages", json=body) as response:
                assert response.status == 202
            async with client.get(f"http://127.0.0.1:{web_port}/healthz") as response:
                assert response.status == 200
        async with siyu(["serve", "--config", str(worker)], cwd=tmp_path) as working:
            await read_until(working, "serving on")
            engine = create_database_engine(url)
            try:
                async with asyncio.timeout(20):
                    while True:
                        async with session_factory(engine)() as session:
                            statuses = (await session.execute(select(OutboxEntry.status))).scalars().all()
                        if statuses == ["sent"]:
                            break
                        await asyncio.sleep(0.05)
            finally:
                await engine.dispose()
            working.send_signal(signal.SIGTERM)
            assert await working.wait() == 0
        receiving.send_signal(signal.SIGTERM)
        assert await receiving.wait() == 0
