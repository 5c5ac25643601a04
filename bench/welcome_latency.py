"""Benchmark: from an add_external_contact callback to send_welcome_msg reaching WeCom.

WeCom accepts the welcome only within 20 s of the event; we aim for under 1 s. A `siyu
serve` process is pointed at the fake WeCom cloud (tests/fakes), and signed callbacks
for new contacts arrive at a steady rate; the time from sending each callback to the
fake receiving its welcome is measured.

    .venv/bin/python bench/welcome_latency.py [--contacts 300] [--rate 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.wecom_callbacks import AES_KEY, CORP_ID, TOKEN, free_port, wait_until_ready  # noqa: E402
from bot.platforms.wecom.crypto import CallbackCrypto, sha1_signature  # noqa: E402
from tests.fakes.wecom_cloud import FakeWeComCloud  # noqa: E402

SECRET = "bench-secret"
WELCOME = "/cgi-bin/externalcontact/send_welcome_msg"


def signed_callback(crypto: CallbackCrypto, external: str, code: str, stamp: int) -> tuple[str, str]:
    plain = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{stamp}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]></ChangeType>"
        f"<UserID><![CDATA[zhangsan]]></UserID><ExternalUserID><![CDATA[{external}]]></ExternalUserID>"
        f"<WelcomeCode><![CDATA[{code}]]></WelcomeCode></xml>"
    )
    encrypted = crypto.encrypt(plain.encode())
    query = urlencode({"msg_signature": sha1_signature(TOKEN, str(stamp), "1", encrypted), "timestamp": stamp, "nonce": "1"})
    return query, f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"


async def main(contacts: int, rate: float) -> None:
    cloud = FakeWeComCloud(CORP_ID, {SECRET: "siyu"})
    await cloud.start()
    achieved = 0.0
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        config = Path(folder) / "siyu.toml"
        config.write_text(
            f'[storage]\nurl = "sqlite:///siyu.db"\n[server]\nport = {port}\n[log]\nlevel = "WARNING"\n'
            f'[platforms.wecom]\ncorp_id = "{CORP_ID}"\nagent_id = 1000002\ntoken = "{TOKEN}"\n'
            f'encoding_aes_key = "{AES_KEY}"\nsecret = "{SECRET}"\napi_base = "{cloud.base_url}"\n'
        )
        server = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--config", str(config)],
                                  stdout=subprocess.DEVNULL, stderr=open(os.environ.get("SIYU_BENCH_LOG", os.devnull), "w"))
        await asyncio.to_thread(wait_until_ready, port)
        if os.environ.get("SIYU_BENCH_PROFILE"):  # py-spy profile of the server under load
            subprocess.Popen(["py-spy", "record", "-o", os.environ["SIYU_BENCH_PROFILE"], "-d", "5", "-p", str(server.pid),
                              "-f", "speedscope"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sent_at: dict[str, float] = {}
        try:
            async with aiohttp.ClientSession() as http:

                async def post(external: str, code: str) -> None:
                    query, body = signed_callback(crypto, external, code, int(time.time()))
                    sent_at[external] = time.time()
                    async with http.post(f"http://127.0.0.1:{port}/wecom/callback?{query}", data=body) as response:
                        assert response.status == 200

                # Open loop: callback n leaves at start + n / rate whether or not earlier ones
                # were answered, as WeCom sends them; waiting for each answer would lower the rate.
                started = time.perf_counter()
                posts = []
                for n in range(contacts):
                    external = f"wmBench{n:010d}"
                    cloud.add_contact("zhangsan", external, f"会员{n}")
                    code = cloud.issue_welcome_code(external, "zhangsan")
                    await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
                    posts.append(asyncio.create_task(post(external, code)))
                await asyncio.gather(*posts)
                achieved = contacts / max(time.perf_counter() - started, 1e-9)
                deadline = time.time() + 30
                while len(cloud.deliveries(WELCOME)) < contacts and time.time() < deadline:
                    await asyncio.sleep(0.05)
        finally:
            server.terminate()
            await asyncio.to_thread(server.wait, 60)  # the fake must keep answering meanwhile
            await cloud.close()
    delivered = sorted((d.at - sent_at[d.to]) * 1000 for d in cloud.deliveries(WELCOME))
    if not delivered:
        sys.exit("no welcome reached the fake cloud")
    # An undelivered welcome is slower than any delivered one: it counts in the percentiles.
    latencies = delivered + [float("inf")] * (contacts - len(delivered))
    print(f"{len(delivered)} of {contacts} welcomes delivered; asked {rate:g} new contacts/s, sent {achieved:.1f}/s")
    print(f"callback → send_welcome_msg: p50 {show(percentile(latencies, 0.5))}, p99 {show(percentile(latencies, 0.99))},"
          f" max {show(latencies[-1])}")


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def show(ms: float) -> str:
    return "undelivered" if ms == float("inf") else f"{ms:.1f} ms"

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0)
    options = parser.parse_args()
    asyncio.run(main(options.contacts, options.rate))
