"""Benchmark: the WeCom chat sidebar on a phone — time to first content and payload.

A siyu server (in this process, SQLite) is pointed at the fake WeCom cloud, with the
tests' brand plus `--members` more members; Debian's chromium opens the sidebar at phone
width with a stand-in for WeCom's `wx` (as tests/test_wecom_sidebar_browser.py does) and
we time from navigation to the member's name on screen:

- cold: a new browser context each time (the OAuth2 round trip through the fake cloud,
  the page, the card);
- warm: signed in already (the page and the card);
- both again with the CPU slowed 4x (Chrome DevTools' throttling), as a stand-in for a
  mid-range phone.

The in-run baseline is a bare aiohttp page of the same size with one fetch of a small
JSON, in the same browser: what the browser and loopback cost by themselves.

    .venv/bin/python bench/sidebar.py [--runs 20] [--members 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.settings.model import load_settings  # noqa: E402
from bot.web.app import build_app  # noqa: E402
from storage.engine import create_database_engine, session_factory  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.tables import IDENTITIES, MEMBERS  # noqa: E402
from tests.conftest import BASE_CONFIG  # noqa: E402
from tests.fakes.wecom_cloud import FakeWeComCloud  # noqa: E402
from tests.sidebar_harness import WANG, free_port, seed_sidebar_brand  # noqa: E402
from tests.test_wecom_sidebar_browser import PHONE, WX_STAND_IN  # noqa: E402
from tests.wecom_harness import CORP, SECRET, wecom_config  # noqa: E402

CHROMIUM = os.environ.get("SIYU_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


async def filler(url: str, count: int) -> None:
    engine = create_database_engine(url)
    async with engine.begin() as connection:
        for start in range(0, count, 5000):
            rows = range(start, min(start + 5000, count))
            await connection.execute(insert(MEMBERS), [{"name": f"会员{n}", "birthday_calendar": "solar",
                                                        "paid_member": False, "birthday_leap_month": False,
                                                        "created_at": datetime.now(timezone.utc),
                                                        "updated_at": datetime.now(timezone.utc)} for n in rows])
    async with engine.begin() as connection:
        ids = [r[0] for r in (await connection.exec_driver_sql("SELECT id FROM members WHERE name LIKE '会员%'")).all()]
        for start in range(0, len(ids), 5000):
            await connection.execute(insert(IDENTITIES), [
                {"member_id": i, "platform": "wecom", "external_id": f"wmFiller{i:08d}",
                 "created_at": datetime.now(timezone.utc)} for i in ids[start:start + 5000]])
    await engine.dispose()


async def baseline_server(size: int) -> tuple[web.AppRunner, str]:
    body = "<!doctype html><meta charset=utf-8><h1 id=t></h1><script>" \
           "fetch('/x.json').then(r=>r.json()).then(d=>{document.getElementById('t').textContent=d.name})</script>"
    body += "<!--" + "x" * max(0, size - len(body) - 7) + "-->"

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="text/html")

    async def data(request: web.Request) -> web.Response:
        return web.json_response({"name": "王芳"})

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/x.json", data)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/"


def summary(name: str, times: list[float]) -> str:
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    return f"{name:<34} median {statistics.median(times) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   max {times[-1] * 1000:7.1f} ms"


async def main(runs: int, members: int) -> None:
    from playwright.async_api import async_playwright

    print(f"# bench/sidebar.py {datetime.now():%Y-%m-%d %H:%M}, load {os.getloadavg()[0]:.2f}, runs {runs}, "
          f"members {members + 2:,}")
    cloud = FakeWeComCloud(CORP, {SECRET: "siyu"})
    cloud.add_staff("zhangsan", "lisi")
    await cloud.start()
    cloud.client_user = "zhangsan"
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        url = f"sqlite:///{folder}/siyu.db"
        path = Path(folder) / "siyu.toml"
        path.write_text(BASE_CONFIG.format(url=url) + wecom_config(cloud.base_url) + f"""
[platforms.wecom.sidebar]
oauth_base = "{cloud.base_url}"
public_url = "http://127.0.0.1:{port}"
[log]
level = "WARNING"
""", encoding="utf-8")
        upgrade(url)
        settings = load_settings(path)
        engine = create_database_engine(url)
        await seed_sidebar_brand(session_factory(engine), datetime.now(timezone.utc))
        await engine.dispose()
        await filler(url, members)
        runner = web.AppRunner(build_app(settings), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        sidebar = f"http://127.0.0.1:{port}/wecom/sidebar"
        stand_in = WX_STAND_IN % {"entry": '"single_chat_tools"', "contact": f'"{WANG}"', "chat": "null", "refuse": "0"}

        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(sidebar) as answer:
                html = await answer.read()
                sent = answer.headers.get("Content-Encoding", "identity")
            async with http.get(f"{sidebar}/api/contact/{WANG}") as answer:
                card = await answer.read()
        print(f"payload: page {len(html):,} B ({len(gzip.compress(html)):,} B gzipped; sent {sent}), "
              f"card {len(card):,} B ({len(gzip.compress(card)):,} B gzipped); no other request but WeCom's SDK "
              "(not loaded here: the stand-in is the client)")
        base_runner, base_url = await baseline_server(len(html))

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                       args=["--no-sandbox", "--disable-gpu"])

            async def timed(target: str, selector: str, context, throttle: float) -> float:  # noqa: ANN001
                page = await context.new_page()
                await page.add_init_script(stand_in)
                if throttle > 1:
                    cdp = await context.new_cdp_session(page)
                    await cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
                started = time.perf_counter()
                await page.goto(target)
                await page.wait_for_selector(selector, state="visible")
                took = time.perf_counter() - started
                await page.close()
                return took

            for throttle in (1.0, 4.0):
                label = "" if throttle == 1 else f", CPU {throttle:.0f}x slower"
                base, cold, warm = [], [], []
                warm_context = await browser.new_context(viewport=PHONE)
                await timed(sidebar, "[data-testid=member-name]", warm_context, throttle)  # sign in once
                for _ in range(runs):
                    context = await browser.new_context(viewport=PHONE)
                    cold.append(await timed(sidebar, "[data-testid=member-name]", context, throttle))
                    await context.close()
                    warm.append(await timed(sidebar, "[data-testid=member-name]", warm_context, throttle))
                    context = await browser.new_context(viewport=PHONE)
                    base.append(await timed(base_url, "#t:not(:empty)", context, throttle))
                    await context.close()
                await warm_context.close()
                print(summary(f"baseline: bare page + fetch{label}", base))
                print(summary(f"sidebar, signed in{label}", warm))
                print(summary(f"sidebar, cold (OAuth2 round trip){label}", cold))
            await browser.close()
        await base_runner.cleanup()
        await runner.cleanup()
    await cloud.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--members", type=int, default=20_000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs, arguments.members))
