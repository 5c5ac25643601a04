"""GET /metrics against the real server and the fake WeCom cloud: callbacks, handling,
sends, welcomes (on time and expired), holds and the backlog move as they happen, and
nothing about a member is ever in it."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from bot.settings.model import load_settings
from bot.shared.keys import DELIVERY
from bot.web.app import build_app
from storage.backlog import read_backlog
from storage.engine import SessionFactory, create_database_engine
from storage.inbox import InboxWriter, NewInboxEntry
from storage.models import OutboxEntry, utcnow
from storage.outbox import NewOutboxMessage, enqueue, mark_held
from tests.conftest import RunningServer, eventually, start_server, write_config
from tests.fakes.wecom_cloud import FakeWeComCloud
from tests.wecom_harness import SEND, WELCOME, Corp, contact_event, wecom_config

ALICE = "wmAJ2GCAAAXtWyujaWJHDDGi0mMETR"
BOB = "wmAJ2GCAAAXtWyujaWJHDDGi0mMETS"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Scrape:
    """One scrape's samples, by name and labels."""

    def __init__(self, text: str):
        self.text = text
        self.samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client: aiohttp.ClientSession, url: str) -> Scrape:
    async with client.get(url) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/plain"
        return Scrape(await response.text())


@pytest.fixture
async def metered(
    cloud: FakeWeComCloud, db_url: str, tmp_path: Path, http: aiohttp.ClientSession, sessions: SessionFactory
) -> AsyncIterator[Corp]:
    extra = wecom_config(cloud.base_url) + "\n[metrics]\nenabled = true\n"
    settings = load_settings(write_config(tmp_path, db_url, extra))
    running = await start_server(build_app(settings), http)
    yield Corp(cloud, running, sessions)
    await running.stop()


async def test_metrics_are_off_unless_enabled(server: RunningServer) -> None:
    async with server.client.get(f"{server.base}/metrics") as response:
        assert response.status == 404


async def test_a_welcome_a_refusal_and_an_expired_welcome_show_in_the_metrics(metered: Corp) -> None:
    url = f"{metered.server.base}/metrics"
    before = await scrape(metered.server.client, url)

    code = metered.cloud.issue_welcome_code(ALICE, "zhangsan")
    assert (await metered.callback(contact_event("add_external_contact", ALICE, WelcomeCode=code)))[0] == 200
    await eventually(lambda: _async(len(metered.cloud.deliveries(WELCOME)) == 1))
    # A forged callback is refused and counted by reason.
    query, body = metered.envelope(contact_event("add_external_contact", BOB))
    assert (await metered.post({**query, "msg_signature": "0" * 40}, body))[0] == 403
    # A welcome whose code WeCom says has expired.
    late = metered.cloud.issue_welcome_code(BOB, "zhangsan")
    metered.cloud.fail_next(WELCOME, 41050, errmsg="invalid welcome_code or welcome_code expired")
    assert (await metered.callback(contact_event("add_external_contact", BOB, WelcomeCode=late)))[0] == 200

    async def counted() -> bool:  # the welcomes go ahead of their rows' handling: wait for both
        now = await scrape(metered.server.client, url)
        handled = now.value("siyu_update_handling_seconds_count", kind="add_external_contact") - before.value(
            "siyu_update_handling_seconds_count", kind="add_external_contact")
        return now.value("siyu_welcomes_expired_total") > before.value("siyu_welcomes_expired_total") and handled >= 2

    await eventually(counted)
    after = await scrape(metered.server.client, url)

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert grew("siyu_callbacks_received_total", platform="wecom") == 2
    assert grew("siyu_callbacks_refused_total", platform="wecom", reason="bad_signature") == 1
    assert grew("siyu_update_handling_seconds_count", kind="add_external_contact") == 2
    assert grew("siyu_sends_total", platform="wecom", route="welcome", outcome="sent") == 1
    assert grew("siyu_send_errors_total", platform="wecom", route="welcome", errcode="41050") == 1
    assert grew("siyu_welcome_latency_seconds_count") == 1
    # The welcome went out well inside WeCom's 20 s: it sits in a bucket below 20.
    assert grew("siyu_welcome_latency_seconds_bucket", le="20.0") == 1
    assert grew("siyu_send_seconds_count", platform="wecom", route="profile") >= 1
    assert after.value("siyu_db_pool_size", pool="main") >= 1
    # Nothing about a member: no ids, no names, no words.
    for private in (ALICE, BOB, "zhangsan", "小禾", code):
        assert private not in after.text


async def test_a_slow_api_and_its_errcodes_are_measured(metered: Corp) -> None:
    """A staff prompt (message/send) that WeCom first answers with 45009, then slowly."""
    url = f"{metered.server.base}/metrics"
    before = await scrape(metered.server.client, url)
    metered.cloud.fail_next(SEND, 45009)
    metered.cloud.slow_next(SEND, 0.3)
    async with metered.sessions() as session, session.begin():
        await enqueue(session, [NewOutboxMessage("prompt:metrics", "wecom", "zhangsan", "staff_prompt", "你好")], utcnow())
    metered.server.app[DELIVERY].wake()
    await eventually(lambda: _async(len(metered.cloud.deliveries(SEND)) == 1), timeout=20)
    after = await scrape(metered.server.client, url)
    labels = {"platform": "wecom", "route": "message"}
    # The client retried 45009 itself; the send took at least the slow answer's time.
    assert after.value("siyu_sends_total", **labels, outcome="sent") - before.value(
        "siyu_sends_total", **labels, outcome="sent") == 1
    slow = after.value("siyu_send_seconds_sum", **labels) - before.value("siyu_send_seconds_sum", **labels)
    assert slow >= 0.3


async def test_metrics_on_a_bind_of_their_own(cloud: FakeWeComCloud, db_url: str, tmp_path: Path,
                                              http: aiohttp.ClientSession) -> None:
    port = free_port()
    extra = f"\n[metrics]\nenabled = true\nport = {port}\n"
    running = await start_server(build_app(load_settings(write_config(tmp_path, db_url, extra))), http)
    try:
        async with http.get(f"{running.base}/metrics") as response:
            assert response.status == 404  # not on the public port
        found = await scrape(http, f"http://127.0.0.1:{port}/metrics")
        assert "siyu_inbox_pending" in found.text and "process_cpu_seconds_total" in found.text
        await running.post_message("王芳", "你好")
        await eventually(lambda: _received(http, port))
    finally:
        await running.stop()


async def _received(http: aiohttp.ClientSession, port: int) -> bool:
    return (await scrape(http, f"http://127.0.0.1:{port}/metrics")).value(
        "siyu_callbacks_received_total", platform="sandbox") >= 1


async def test_the_backlog_counts_waiting_rows_and_their_age(db_url: str, sessions: SessionFactory) -> None:
    engine = create_database_engine(db_url)
    writer = InboxWriter(engine)
    writer.start()
    for n in range(3):
        await writer.add(NewInboxEntry(f"k{n}", "sandbox", "王芳", "{}"))
    await writer.close()
    await engine.dispose()
    now = utcnow()
    async with sessions() as session, session.begin():
        await enqueue(session, [
            NewOutboxMessage("a", "sandbox", "王芳", "service", "x"),
            NewOutboxMessage("b", "sandbox", "王芳", "marketing", "y"),
            NewOutboxMessage("c", "wecom", "wm1", "service", "z", route="welcome"),
        ], now - timedelta(minutes=2))
    async with sessions() as session, session.begin():
        held = (await session.execute(select(OutboxEntry.id).where(OutboxEntry.dedupe_key == "b"))).scalar_one()
        await mark_held(session, held, "member opted out of marketing")
    async with sessions() as session:
        backlog = await read_backlog(session, now + timedelta(seconds=30))
    assert backlog.inbox_pending == 3 and backlog.inbox_oldest_age >= 30
    assert dict(backlog.outbox_waiting) == {("pending", "message"): 1, ("pending", "welcome"): 1}
    assert dict(backlog.outbox_given_up) == {("held", "message"): 1}
    assert 140 <= backlog.outbox_overdue <= 160


async def _async(value: bool) -> bool:
    return value


async def test_the_dashboard_and_the_scrape_config_name_what_siyu_serves(metered: Corp) -> None:
    """Every siyu_ metric the Grafana dashboard queries is one the server exposes."""
    deploy = Path(__file__).resolve().parent.parent / "docs" / "deploy"
    dashboard = json.loads((deploy / "grafana-dashboard.json").read_text())
    queried = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for panel in dashboard["panels"] for target in panel.get("targets", ())
        for name in re.findall(r"\bsiyu_\w+", target["expr"])
    }
    text = (await scrape(metered.server.client, f"{metered.server.base}/metrics")).text
    served = {re.sub(r"_total$", "", name) for name in re.findall(r"^# TYPE (siyu_\w+)", text, re.M)}
    assert len(queried) >= 18 and queried <= served, sorted(queried - served)
    scrape_config = yaml.safe_load((deploy / "prometheus.yml").read_text())
    targets = [t for group in scrape_config["scrape_configs"][0]["static_configs"] for t in group["targets"]]
    assert targets == ["127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8090"]  # the systemd units' ports
