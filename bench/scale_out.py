"""Benchmark: 1, 2 and 3 `siyu serve` processes sharing one PostgreSQL database.

Each layout starts on an emptied database. Members write through the sandbox (each
member's messages one after another, spread over the processes in turn; every message
says 吐司, so the bread rule counts one hit per handling) while signed WeCom
add_external_contact callbacks with a welcome code arrive beside them (the fake WeCom
cloud runs in this process). Measured per layout:

- acknowledgements/s: callbacks answered per second while sending;
- drain: from the first send until every inbox row is handled;
- CPU per handled update: the server processes' user + system CPU over handled rows;
- duplicates: tag hits beyond one per message (an update handled twice counts again);
- order violations: members whose messages were handled out of the order written;
- welcomes: delivered to the fake cloud, and the slowest.

    SIYU_BENCH_PG_URL=postgresql://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python bench/scale_out.py [--members 300] [--messages 5] [--welcomes 300]

The database named by SIYU_BENCH_PG_URL is emptied (its public schema dropped).
`--sqlite` runs one process on a SQLite file instead (the single-process baseline).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.wecom_callbacks import AES_KEY, CORP_ID, TOKEN, free_port, wait_until_ready  # noqa: E402
from bench.welcome_latency import SECRET, WELCOME, signed_callback  # noqa: E402
from bot.platforms.wecom.crypto import CallbackCrypto  # noqa: E402
from storage.engine import sync_url  # noqa: E402
from tests.fakes.wecom_cloud import FakeWeComCloud  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
IN_FLIGHT = 64  # requests the client keeps open at once


@dataclass
class Figures:
    processes: int
    acknowledged: int
    sending_s: float
    drain_s: float
    cpu_ms_per_update: float
    handled: int
    duplicates: int
    order_violations: int
    welcomed: int
    welcome_max_s: float
    welcome_rows_max_s: float  # stored → handled, welcome-bearing rows (the dispatcher's part)
    other_rows_max_s: float


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def reset(url: str) -> None:
    if url.startswith("sqlite"):
        database = Path(url.removeprefix("sqlite:///"))
        for leftover in database.parent.glob(database.name + "*"):
            leftover.unlink()
        return
    engine = create_engine(sync_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def scalar(url: str, sql: str) -> int:
    engine = create_engine(sync_url(url))
    with engine.connect() as connection:
        value = connection.execute(text(sql)).scalar_one()
    engine.dispose()
    return int(value or 0)


def waited(url: str) -> tuple[float, float]:
    """Longest time from stored to handled: welcome-bearing rows, and the others."""
    engine = create_engine(sync_url(url))
    with engine.connect() as connection:
        seconds = ("(julianday(processed_at) - julianday(received_at)) * 86400" if url.startswith("sqlite")
                   else "extract(epoch FROM processed_at - received_at)")
        rows = connection.execute(text(
            f"SELECT payload LIKE '%WelcomeCode%', max({seconds}) FROM inbox GROUP BY 1"
        )).all()
    engine.dispose()
    found = {bool(welcome): float(longest or 0) for welcome, longest in rows}
    return found.get(True, 0.0), found.get(False, 0.0)


def handled_in_order(url: str, plans: dict[str, list[str]]) -> tuple[int, int]:
    """(extra tag hits, members handled out of order) from what the database holds."""
    engine = create_engine(sync_url(url))
    with engine.connect() as connection:
        hits = dict(connection.execute(text(
            "SELECT i.external_id, mt.hit_count FROM member_tags mt JOIN tags t ON t.id = mt.tag_id "
            "JOIN member_identities i ON i.member_id = mt.member_id AND i.platform = 'sandbox' WHERE t.name = '面包控'"
        )).all())
        said: dict[str, list[str]] = {}
        for name, said_text in connection.execute(text(
            "SELECT i.external_id, x.text FROM interactions x JOIN member_identities i "
            "ON i.member_id = x.member_id AND i.platform = 'sandbox' WHERE x.kind = 'message_in' ORDER BY x.id"
        )):
            said.setdefault(name, []).append(said_text)
    engine.dispose()
    duplicates = sum(max(0, hits.get(name, 0) - len(texts)) for name, texts in plans.items())
    violations = sum(1 for name, texts in plans.items() if said.get(name, []) != texts)
    return duplicates, violations


async def run_layout(url: str, processes: int, members: int, messages: int, welcomes: int) -> Figures:
    reset(url)
    cloud = FakeWeComCloud(CORP_ID, {SECRET: "siyu"})
    await cloud.start()
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
    servers: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as folder:
        ports = [free_port() for _ in range(processes)]
        for n, port in enumerate(ports):
            config = Path(folder) / f"siyu{n}.toml"
            config.write_text(
                f'[storage]\nurl = "{url}"\n[server]\nport = {port}\n[log]\nlevel = "WARNING"\n'
                f'[platforms.sandbox]\nenabled = true\n[delivery]\nquiet_hours = false\n'
                f'[[tags.rules]]\nid = "bread"\ntag = "面包控"\ngroup = "口味偏好"\nkeywords = ["吐司"]\n'
                f'[platforms.wecom]\ncorp_id = "{CORP_ID}"\nagent_id = 1000002\ntoken = "{TOKEN}"\n'
                f'encoding_aes_key = "{AES_KEY}"\nsecret = "{SECRET}"\napi_base = "{cloud.base_url}"\n',
                encoding="utf-8",
            )
            servers.append(subprocess.Popen(
                [sys.executable, "-m", "bot", "serve", "--config", str(config)],
                stdout=subprocess.DEVNULL, stderr=open(os.environ.get("SIYU_BENCH_LOG", os.devnull), "a"),
            ))
        try:
            await asyncio.gather(*(asyncio.to_thread(wait_until_ready, port, 120) for port in ports))
            plans = {f"会员{n:04d}": [f"第{k}条：吐司" for k in range(1, messages + 1)] for n in range(members)}
            cpu_before = sum(cpu_seconds(server.pid) for server in servers)
            slots = asyncio.Semaphore(IN_FLIGHT)
            acknowledged = 0
            sent_at: dict[str, float] = {}
            turn = iter(range(10**9))

            async def post(http: aiohttp.ClientSession, path: str, **kwargs: object) -> None:
                nonlocal acknowledged
                port = ports[next(turn) % processes]
                async with slots, http.post(f"http://127.0.0.1:{port}{path}", **kwargs) as response:  # type: ignore[arg-type]
                    assert response.status in (200, 202), await response.text()
                    acknowledged += 1

            async def member_writes(http: aiohttp.ClientSession, name: str, texts: list[str]) -> None:
                for k, said in enumerate(texts):
                    body = {"member": name, "text": said, "id": f"{name.encode().hex()}-{k}"}
                    await post(http, "/sandbox/messages", json=body)

            async def welcome(http: aiohttp.ClientSession, n: int) -> None:
                external = f"wmScale{n:08d}"
                cloud.add_contact("zhangsan", external, f"新客{n}")
                code = cloud.issue_welcome_code(external, "zhangsan")
                query, body = signed_callback(crypto, external, code, int(time.time()))
                sent_at[external] = time.time()
                await post(http, f"/wecom/callback?{query}", data=body)

            started = time.perf_counter()
            async with aiohttp.ClientSession() as http:
                await asyncio.gather(
                    *(member_writes(http, name, texts) for name, texts in plans.items()),
                    *(welcome(http, n) for n in range(welcomes)),
                )
            sending = time.perf_counter() - started
            expected = members * messages + welcomes
            while scalar(url, "SELECT count(*) FROM inbox WHERE status <> 'pending'") < expected:
                await asyncio.sleep(0.1)
            drain = time.perf_counter() - started
            cpu = sum(cpu_seconds(server.pid) for server in servers) - cpu_before
            deadline = time.time() + 30
            while len(cloud.deliveries(WELCOME)) < welcomes and time.time() < deadline:
                await asyncio.sleep(0.1)
            delivered = cloud.deliveries(WELCOME)
            slowest = max((d.at - sent_at[d.to] for d in delivered), default=0.0)
        finally:
            for server in servers:
                server.terminate()
            for server in servers:
                await asyncio.to_thread(server.wait, 60)
            await cloud.close()
    duplicates, violations = handled_in_order(url, plans)
    return Figures(processes, acknowledged, sending, drain, cpu * 1000 / expected, expected,
                   duplicates, violations, len(delivered), slowest, *waited(url))


async def main(url: str, layouts: list[int], members: int, messages: int, welcomes: int) -> None:
    print(f"{members} members x {messages} messages (sandbox) + {welcomes} WeCom new contacts with a welcome code; "
          f"{IN_FLIGHT} requests in flight")
    print("| processes | acks/s | drain s | CPU ms / update | duplicates | order violations "
          "| welcome rows: longest wait s | other rows: longest wait s | welcomed | slowest welcome s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for processes in layouts:
        f = await run_layout(url, processes, members, messages, welcomes)
        print(f"| {f.processes} | {f.acknowledged / f.sending_s:.0f} | {f.drain_s:.1f} | {f.cpu_ms_per_update:.2f} | "
              f"{f.duplicates} | {f.order_violations} | {f.welcome_rows_max_s:.1f} | {f.other_rows_max_s:.1f} "
              f"| {f.welcomed}/{welcomes} | {f.welcome_max_s:.1f} |", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=300)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--welcomes", type=int, default=300)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--sqlite", action="store_true", help="one process on a SQLite file")
    options = parser.parse_args()
    if options.sqlite:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/siyu.db"
            asyncio.run(main(url, [1], options.members, options.messages, options.welcomes))
        sys.exit(0)
    pg = os.environ.get("SIYU_BENCH_PG_URL")
    if not pg:
        sys.exit("set SIYU_BENCH_PG_URL to a PostgreSQL database this benchmark may empty")
    asyncio.run(main(pg, options.processes, options.members, options.messages, options.welcomes))
