"""Benchmark: console logins (issue 14, items 5 and 12).

A siyu server (in this process, SQLite, the console tests' logins) answers:

- login time for a known login with a wrong password, an unknown login and a right
  password (median of `--runs`): with a decoy hash for unknown logins they cost the same;
- `/healthz` while `--loops` clients log in as fast as they can (median and p95): scrypt
  runs in threads, at most `MAX_CONCURRENT_HASHES` at once, so the loop keeps answering;
- the process's peak memory after `--huge` failed logins with 100 kB login names (the
  lockout keeps a 64-character digest per name, in the database).

    .venv/bin/python bench/console_logins.py [--runs 40] [--loops 8] [--seconds 5] [--huge 600]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import logging

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.console.passwords import MAX_CONCURRENT_HASHES, hash_password, verify_password  # noqa: E402
from bot.settings.model import load_settings  # noqa: E402
from bot.web.app import build_app  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from tests.conftest import start_server, write_config  # noqa: E402
from tests.console_harness import CONSOLE_CONFIG, PASSWORD  # noqa: E402


async def attempt(http: aiohttp.ClientSession, base: str, login: str, password: str) -> float:
    async with http.get(base + "/admin/login") as response:
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', await response.text())
    assert csrf
    started = time.perf_counter()
    async with http.post(base + "/admin/login", data={"login": login, "password": password,
                                                      "csrf": csrf.group(1)}, allow_redirects=False) as response:
        await response.read()
    return (time.perf_counter() - started) * 1000


async def main(runs: int, loops: int, seconds: float, huge: int) -> None:
    logging.disable(logging.WARNING)  # 600 failed-login lines say nothing here
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/siyu.db"
        upgrade(url)
        settings = load_settings(write_config(Path(folder), url, CONSOLE_CONFIG))
        async with aiohttp.ClientSession() as client:
            server = await start_server(build_app(settings), client)
            try:
                await run(server.base, runs, loops, seconds, huge)
            finally:
                await server.stop()


async def run(base: str, runs: int, loops: int, seconds: float, huge: int) -> None:
    times: dict[str, list[float]] = {"known login, wrong password": [], "unknown login": [], "right password": []}
    known = ["ops", "robot", "chenjing", "zhoumin"]  # four wrong passwords each: below the lockout
    for n in range(runs):
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            if n < 4 * len(known):
                times["known login, wrong password"].append(await attempt(http, base, known[n % 4], f"wrong-{n}"))
            times["unknown login"].append(await attempt(http, base, f"nobody-{n}", "wrong"))
            times["right password"].append(await attempt(http, base, "liuyang", PASSWORD))
    started = time.perf_counter()
    for _ in range(10):
        verify_password("wrong", hash_password(PASSWORD))
    print(f"{'one scrypt, alone':28s}        {(time.perf_counter() - started) * 50:6.1f} ms")  # 2 per round
    for what, values in times.items():
        print(f"{what:28s} median {statistics.median(values):6.1f} ms")

    stop = time.perf_counter() + seconds
    health: list[float] = []

    async def flood(n: int) -> None:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            while time.perf_counter() < stop:
                await attempt(http, base, "liuyang", PASSWORD)

    async def probe() -> None:
        async with aiohttp.ClientSession() as http:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                async with http.get(base + "/healthz") as response:
                    await response.read()
                health.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(0.05)

    await asyncio.gather(probe(), *(flood(n) for n in range(loops)))
    health.sort()
    print(f"/healthz during {loops} login loops ({MAX_CONCURRENT_HASHES} hashes at once): "
          f"median {statistics.median(health):.1f} ms, p95 {health[int(len(health) * 0.95)]:.1f} ms, n={len(health)}")

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        for n in range(huge):
            await attempt(http, base, f"{n}-" + "x" * 100_000, "wrong")
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory before {huge} failed 100 kB logins: {before:.0f} MiB, after: {after:.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--loops", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--huge", type=int, default=600)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs, arguments.loops, arguments.seconds, arguments.huge))
