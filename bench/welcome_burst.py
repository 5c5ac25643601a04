"""Benchmark: a burst of new contacts (a QR-code campaign at a store opening).

1,000 signed, encrypted add_external_contact callbacks with a WelcomeCode, posted as fast
as the client can (64 in flight), to one `siyu serve` process on SQLite pointed at the
fake WeCom cloud (tests/fakes; it runs in this bench process, the server in its own).
Scenarios: the burst alone; mixed with 2,000 Customer Service callbacks (400 members
writing, each pulled with kf/sync_msg and answered with kf/send_msg); mixed again with
the route `message` answering after 12 s (message/send to staff and kf/send_msg: staff
prompts alone are too few in this traffic to matter); and delivery alone ("delivery",
"delivery+slow": the rows already queued, in this process), to tell delivery's share
from the dispatcher's. Measured: welcomes reaching the cloud within 20 s of their
callback being posted (WeCom's limit), p50 and p99 over all 1,000 (an undelivered
welcome counts as infinitely late).

    .venv/bin/python bench/welcome_burst.py [--contacts 1000] [--service 2000] [--scenario all]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.wecom_callbacks import AES_KEY, CORP_ID, TOKEN, free_port, wait_until_ready  # noqa: E402
from bot.platforms.wecom.crypto import CallbackCrypto, sha1_signature  # noqa: E402
from tests.fakes.wecom_cloud import FakeWeComCloud  # noqa: E402

SECRET = "bench-secret"
WELCOME = "/cgi-bin/externalcontact/send_welcome_msg"
STAFF = "/cgi-bin/message/send"
KF_SEND = "/cgi-bin/kf/send_msg"
KFID = "wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q"
LIMIT = 20.0  # seconds a welcome code lives
IN_FLIGHT = 64


def envelope(crypto: CallbackCrypto, plain: str, stamp: int) -> tuple[str, str]:
    encrypted = crypto.encrypt(plain.encode())
    nonce = str(random.randrange(10**9))
    query = urlencode({"msg_signature": sha1_signature(TOKEN, str(stamp), nonce, encrypted), "timestamp": stamp, "nonce": nonce})
    return query, f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"


def new_contact(external: str, code: str, stamp: int) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{stamp}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]></ChangeType>"
        f"<UserID><![CDATA[zhangsan]]></UserID><ExternalUserID><![CDATA[{external}]]></ExternalUserID>"
        f"<WelcomeCode><![CDATA[{code}]]></WelcomeCode></xml>"
    )


def kf_event(token: str, stamp: int) -> str:
    return (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><CreateTime>{stamp}</CreateTime>"
            f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>"
            f"<Token><![CDATA[{token}]]></Token><OpenKfId><![CDATA[{KFID}]]></OpenKfId></xml>")


async def run(contacts: int, service: int, slow_staff: bool) -> dict[str, float]:
    cloud = FakeWeComCloud(CORP_ID, {SECRET: "siyu"})
    cloud.add_staff("zhangsan")
    if slow_staff:  # the route `message`: staff prompts and Customer Service replies
        cloud.slow_next(STAFF, 12.0, times=100_000)
        cloud.slow_next(KF_SEND, 12.0, times=100_000)
    await cloud.start()
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        config = Path(folder) / "siyu.toml"
        config.write_text(
            f'[storage]\nurl = "sqlite:///{folder}/siyu.db"\n[server]\nport = {port}\n[log]\nlevel = "WARNING"\n'
            f'[platforms.wecom]\ncorp_id = "{CORP_ID}"\nagent_id = 1000002\ntoken = "{TOKEN}"\n'
            f'encoding_aes_key = "{AES_KEY}"\nsecret = "{SECRET}"\napi_base = "{cloud.base_url}"\n'
            + os.environ.get("SIYU_BENCH_EXTRA", "").replace("\\n", "\n")
        )
        server = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--config", str(config)], cwd=folder,
                                  stdout=subprocess.DEVNULL, stderr=open(os.environ.get("SIYU_BENCH_LOG", os.devnull), "w"))
        await asyncio.to_thread(wait_until_ready, port)
        posted_at: dict[str, float] = {}
        jobs: list[tuple[str | None, str]] = []
        stamp = int(time.time())
        for n in range(contacts):
            external = f"wmBurst{n:010d}"
            cloud.add_contact("zhangsan", external, f"会员{n}")
            jobs.append((external, new_contact(external, cloud.issue_welcome_code(external, "zhangsan"), stamp)))
        for n in range(service):
            writer = f"wmWriter{n % 400:08d}AAAA"
            text = random.choice(["吐司今天还有吗", "几点关门", "有少糖的蛋糕吗"])
            jobs.append((None, kf_event(cloud.customer_writes(KFID, writer, text), stamp)))
        random.shuffle(jobs)
        url = f"http://127.0.0.1:{port}/wecom/callback"
        started = time.time()
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=IN_FLIGHT)) as http:
                gate = asyncio.Semaphore(IN_FLIGHT)

                async def post(external: str | None, plain: str) -> None:
                    query, body = envelope(crypto, plain, int(time.time()))
                    async with gate:
                        if external:
                            posted_at[external] = time.time()
                        async with http.post(f"{url}?{query}", data=body) as response:
                            assert response.status == 200, response.status

                await asyncio.gather(*(post(e, p) for e, p in jobs))
                posted = time.time() - started
                deadline = time.time() + LIMIT + 10
                while len(cloud.deliveries(WELCOME)) < contacts and time.time() < deadline:
                    await asyncio.sleep(0.1)
        finally:
            server.terminate()
            await asyncio.to_thread(server.wait, 60)  # the fake must keep answering meanwhile
            await cloud.close()
            if keep := os.environ.get("SIYU_BENCH_KEEP"):  # the database, to look into afterwards
                shutil.copy(Path(folder) / "siyu.db", keep)
    latencies = sorted(d.at - posted_at[d.to] for d in cloud.deliveries(WELCOME))
    padded = latencies + [math.inf] * (contacts - len(latencies))
    return {
        "posted_s": posted, "delivered": len(latencies), "within_20s": sum(x <= LIMIT for x in latencies),
        "p50": padded[len(padded) // 2], "p99": padded[min(len(padded) - 1, int(len(padded) * 0.99))],
        "kf_replies": len(cloud.deliveries(KF_SEND)), "staff_calls": len(cloud.calls_to(STAFF)),
    }


async def delivery_only(contacts: int, slow_staff: bool) -> dict[str, float]:
    """Delivery alone, in this process: `contacts` welcome rows (and as many profile reads
    and 50 staff prompts) already in the outbox of a SQLite file; how soon each welcome
    reaches the fake cloud. Tells delivery's share apart from the dispatcher's."""
    from datetime import datetime, timezone

    from tenacity import wait_none

    from bot.platforms.wecom.client import WeComClient
    from bot.platforms.wecom.sender import WeComSender
    from scheduler.delivery import DeliveryLoop
    from storage.engine import create_database_engine, session_factory
    from storage.inbox import InboxWriter
    from storage.migrate import upgrade
    from storage.outbox import NewOutboxMessage, enqueue

    cloud = FakeWeComCloud(CORP_ID, {SECRET: "siyu"})
    cloud.add_staff("zhangsan")
    if slow_staff:
        cloud.slow_next(STAFF, 12.0, times=100_000)
    await cloud.start()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/siyu.db"
        await asyncio.to_thread(upgrade, url)
        engine = create_database_engine(url)
        sessions = session_factory(engine)
        now = datetime.now(timezone.utc)
        rows = [NewOutboxMessage(f"prompt:{n}", "wecom", "zhangsan", "staff_prompt", f"请跟进 {n}") for n in range(50)]
        for n in range(contacts):
            external = f"wmBurst{n:010d}"
            cloud.add_contact("zhangsan", external, f"会员{n}")
            meta = f'{{"welcome_code": "{cloud.issue_welcome_code(external, "zhangsan")}", "received_at": "{now.isoformat()}"}}'
            rows.append(NewOutboxMessage(f"welcome:{n}", "wecom", external, "service", "欢迎光临", route="welcome", meta=meta))
            rows.append(NewOutboxMessage(f"profile:{n}", "wecom", external, "request", "", route="profile"))
        async with sessions() as session, session.begin():
            await enqueue(session, rows, now)
        async with aiohttp.ClientSession() as http:
            client = WeComClient(http, cloud.base_url, CORP_ID, SECRET, retry_wait=wait_none(),
                                 timeout=aiohttp.ClientTimeout(total=12.5))
            loop = DeliveryLoop(sessions, {"wecom": WeComSender(client, sessions, 1000002, lambda: InboxWriter(engine))})
            started = now.timestamp()
            loop.start()
            while len(cloud.deliveries(WELCOME)) < contacts and time.time() - started < LIMIT + 10:
                await asyncio.sleep(0.05)
            await loop.close(timedelta(seconds=0.5))
        await engine.dispose()
    await cloud.close()
    latencies = sorted(d.at - started for d in cloud.deliveries(WELCOME))
    padded = latencies + [math.inf] * (contacts - len(latencies))
    return {
        "posted_s": 0.0, "delivered": len(latencies), "within_20s": sum(x <= LIMIT for x in latencies),
        "p50": padded[len(padded) // 2], "p99": padded[min(len(padded) - 1, int(len(padded) * 0.99))],
        "kf_replies": 0, "staff_calls": len(cloud.calls_to(STAFF)),
    }


async def main(contacts: int, service: int, scenarios: list[str]) -> None:
    plans = {"alone": (0, False), "mixed": (service, False), "mixed+slow": (service, True)}
    for name in scenarios:
        if name.startswith("delivery"):
            r = await delivery_only(contacts, name.endswith("slow"))
            print(f"{name:>10}: {contacts} welcome rows + {contacts} profile reads + 50 staff prompts already queued; "
                  f"welcomed {r['delivered']:.0f}, within 20 s {r['within_20s']:.0f} ({r['within_20s'] / contacts:.1%}); "
                  f"p50 {r['p50']:.2f} s, p99 {r['p99']:.2f} s; message/send calls {r['staff_calls']:.0f}", flush=True)
            continue
        extra, slow = plans[name]
        r = await run(contacts, extra, slow)
        print(f"{name:>10}: {contacts} new contacts + {extra} Customer Service callbacks posted in {r['posted_s']:.1f} s; "
              f"welcomed {r['delivered']:.0f}, within 20 s {r['within_20s']:.0f} ({r['within_20s'] / contacts:.1%}); "
              f"p50 {r['p50']:.2f} s, p99 {r['p99']:.2f} s; kf replies {r['kf_replies']:.0f}, message/send calls {r['staff_calls']:.0f}",
              flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--service", type=int, default=2000)
    parser.add_argument("--scenario", choices=["alone", "mixed", "mixed+slow", "delivery", "delivery+slow", "all"],
                        default="all")
    options = parser.parse_args()
    chosen = ["alone", "mixed", "mixed+slow", "delivery", "delivery+slow"] if options.scenario == "all" else [options.scenario]
    asyncio.run(main(options.contacts, options.service, chosen))
