"""Task prompts reach staff as links to the task page: a WeCom text card whose URL signs
the staff member in, a link line in the sandbox staff panel, plain text where no console
is served. The calendar's mass-send prompt becomes a task too."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import select

from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.errors import WeComApiError
from bot.platforms.wecom.sender import card_description, cut_utf8, text_card
from bot.settings.model import load_settings
from bot.shared.keys import DELIVERY
from bot.shared.prompt_links import next_hour, prompt_link_builder
from bot.shared.task_links import link_holder, signed_link
from bot.web.app import build_app
from content_templates.renderer import Renderer
from handlers.outbound import prompt_meta
from scheduler.calendar import EntrySpec
from scheduler.calendar_run import CalendarOptions, run_calendar
from scheduler.staff_digest import send_digests
from storage.audiences import Audience
from storage.engine import SessionFactory
from storage.models import Member, MemberIdentity, OutboxEntry, Staff, StaffTask, Store, utcnow
from storage.outbox import NewOutboxMessage, enqueue
from tests.browser_harness import needs_chromium
from tests.conftest import RunningServer, eventually, start_server, write_config
from tests.fakes.wecom_cloud import FakeWeComCloud
from tests.sse import next_event
from tests.test_wecom_flow import ALICE, BOB, kf_event, member
from tests.test_wecom_staff import KF
from tests.wecom_harness import AGENT, CORP, SEND, Corp, contact_event, wecom_config
from tests.wecom_harness import SECRET as APP_SECRET

PUBLIC = "http://siyu.example.com"  # http: the session cookie of an https console is Secure
SECRET = "card-test-secret-0123456789abcdefghijklmnop"
CONSOLE = f"""
[console]
public_url = "{PUBLIC}/"
secret = "{SECRET}"
task_link_days = 7

[[console.users]]
login = "ops"
role = "operator"
token = "ops-token-0123456789abcdef"
"""
SHANGHAI = ZoneInfo("Asia/Shanghai")


# -- pure: cutting to WeCom's limits, and the links ---------------------------------------

def test_a_title_is_cut_between_characters_within_128_bytes() -> None:
    title = "人工回复：" + "王" * 60  # 195 bytes
    cut = cut_utf8(title, 128)
    assert len(cut.encode()) <= 128 and cut.endswith("…") and title.startswith(cut[:-1])
    assert len(cut.encode()) > 120  # as much as fits, not a coarse cut
    assert cut_utf8("短标题", 128) == "短标题"


def test_a_description_is_escaped_broken_into_lines_and_cut_never_inside_an_escape() -> None:
    lines = ["【需要你回复】任务 #12：王芳想找人工处理。", "11-24 09:00 她：面包<b>发霉</b>了 & 我要退款"]
    assert card_description(lines, 512) == (
        "【需要你回复】任务 #12：王芳想找人工处理。<br>11-24 09:00 她：面包&lt;b&gt;发霉&lt;/b&gt;了 &amp; 我要退款"
    )
    # "<" escapes to 4 bytes: a limit that falls inside an escape keeps the whole escape out.
    for limit in range(8, 40):
        cut = card_description(["好" * 3 + "<" * 20], limit)
        assert len(cut.encode()) <= limit and cut.endswith("…")
        assert cut[:-1].replace("&lt;", "") in ("", "好", "好好", "好好好"), cut
    long = card_description(["面包发霉了，" * 100, "第二行"], 512)
    assert len(long.encode()) <= 512 and long.endswith("…") and "\ufffd" not in long and "<br>" not in long


def test_a_url_too_long_for_a_card_leaves_the_prompt_as_text() -> None:
    assert text_card("正文", "标题", "https://a.example/" + "x" * 2100) is None
    card = text_card("第一行\n\n第二行", "", "https://a.example/admin/tasks/1")
    assert card is not None and (card.title, card.description, card.button) == ("第一行", "第一行<br>第二行", "去处理")


def test_links_are_signed_for_the_staff_member_and_none_without_console(tmp_path: Path) -> None:
    now = datetime(2026, 11, 24, 1, 17, 5, tzinfo=UTC)
    without = load_settings(write_config(tmp_path, "sqlite:///unused.db"))
    assert prompt_link_builder(without, b"k" * 32)("/admin/tasks/3", "zhangsan") is None

    settings = load_settings(write_config(tmp_path, "sqlite:///unused.db", CONSOLE))
    link = prompt_link_builder(settings, SECRET.encode(), clock=lambda: now)
    url = link("/admin/tasks/3", "zhangsan")
    assert url is not None and url.startswith(f"{PUBLIC}/admin/tasks/3?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert link_holder(SECRET.encode(), "/admin/tasks/3", query, now) == "zhangsan"
    assert link_holder(SECRET.encode(), "/admin/tasks/4", query, now) is None  # another task's link
    assert int(query["until"]) >= (now + timedelta(days=7)).timestamp()
    # A retry within the hour signs the same URL (WeCom's duplicate check then holds).
    later = prompt_link_builder(settings, SECRET.encode(), clock=lambda: now + timedelta(minutes=40))
    assert later("/admin/tasks/3", "zhangsan") == url
    assert next_hour(datetime(2026, 1, 1, 9, 0, tzinfo=UTC)) == datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


# -- WeCom with the console: text cards ------------------------------------------------

@pytest.fixture
async def carded(
    cloud: FakeWeComCloud, db_url: str, tmp_path: Path, http: aiohttp.ClientSession, sessions: SessionFactory
) -> AsyncIterator[Corp]:
    settings = load_settings(write_config(tmp_path, db_url, wecom_config(cloud.base_url) + CONSOLE))
    running = await start_server(build_app(settings), http)
    yield Corp(cloud, running, sessions)
    await running.stop()


async def open_link(server: RunningServer, url: str) -> tuple[int, str, str]:
    """Open `url` (addressed to the public URL) on the test server, as a phone with no
    cookies would: the final status, path and page."""
    parts = urlsplit(url)
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as phone,
        phone.get(f"{server.base}{parts.path}?{parts.query}") as response,
    ):
        return response.status, response.url.path, await response.text()


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"


async def owned_by_zhangsan(corp: Corp, external: str, name: str) -> None:
    corp.cloud.add_contact("zhangsan", external, name)
    await corp.callback(contact_event("add_external_contact", external))

    async def owned() -> bool:  # and named: the profile fetch has come back
        found = await member(corp, external)
        return found is not None and found.owner_staff_id is not None and found.name == name

    await eventually(owned)


async def cards(corp: Corp, n: int) -> list[dict]:  # type: ignore[type-arg]
    async def arrived() -> bool:
        return len(corp.cloud.deliveries(SEND)) >= n

    await eventually(arrived)
    return [d.body for d in corp.cloud.deliveries(SEND)]


async def test_a_hand_off_reaches_the_owner_as_a_card_whose_link_opens_the_task(carded: Corp) -> None:
    await owned_by_zhangsan(carded, ALICE, "王芳")
    complaint = "面包发霉了<b>我要退款</b>，" + "真的很失望，" * 60
    await carded.callback(kf_event(carded.cloud.customer_writes(KF, ALICE, complaint)))

    (prompt,) = await cards(carded, 1)
    async with carded.sessions() as session:
        (task,) = (await session.execute(select(StaffTask).where(StaffTask.kind == "handoff_reply"))).scalars().all()
    assert prompt["touser"] == "zhangsan" and prompt["msgtype"] == "textcard"
    card = prompt["textcard"]
    assert card["title"] == task.title == "人工回复：王芳" and card["btntxt"] == "去处理"
    description = card["description"]
    assert f"任务 #{task.id}" in description and "面包发霉了&lt;b&gt;我要退款&lt;/b&gt;" in description
    assert len(description.encode()) <= 512 and description.endswith("…") and "\ufffd" not in description
    assert card["url"].startswith(f"{PUBLIC}/admin/tasks/{task.id}?")

    status, path, page = await open_link(carded.server, card["url"])
    assert (status, path) == (200, f"/admin/tasks/{task.id}") and "人工回复：王芳" in page

    sig = parse_qs(urlsplit(card["url"]).query)["sig"][0]
    forged = with_query(card["url"], sig=("B" if sig[0] == "A" else "A") + sig[1:])
    assert (await open_link(carded.server, forged))[1] == "/admin/login"
    another = card["url"].replace(f"/admin/tasks/{task.id}?", f"/admin/tasks/{task.id + 1}?")
    assert (await open_link(carded.server, another))[1] == "/admin/login"
    # Genuinely signed, but its days are over.
    expired = signed_link(PUBLIC, SECRET.encode(), f"/admin/tasks/{task.id}", "zhangsan",
                          utcnow() - timedelta(days=8), 7)
    assert (await open_link(carded.server, expired))[1] == "/admin/login"


async def test_churn_prompts_a_card_to_its_task_and_the_digest_a_card_to_the_list(carded: Corp) -> None:
    await owned_by_zhangsan(carded, BOB, "李娜")
    await carded.callback(contact_event("del_follow_user", BOB))

    (churn,) = await cards(carded, 1)
    async with carded.sessions() as session:
        (task,) = (await session.execute(select(StaffTask).where(StaffTask.kind == "churn_follow_up"))).scalars().all()
    assert churn["msgtype"] == "textcard" and churn["textcard"]["title"] == "流失回访：李娜"
    assert "删除了你的企业微信" in churn["textcard"]["description"]
    assert urlsplit(churn["textcard"]["url"]).path == f"/admin/tasks/{task.id}"

    report = await send_digests(carded.sessions, Renderer(), SHANGHAI, utcnow(), "wecom")
    assert report.digests == 1
    carded.server.app[DELIVERY].wake()
    digest = (await cards(carded, 2))[1]
    assert digest["msgtype"] == "textcard" and digest["textcard"]["title"] == "今日待办：1 个任务"
    assert "流失回访：李娜" in digest["textcard"]["description"]
    assert urlsplit(digest["textcard"]["url"]).path == "/admin/tasks"
    status, path, page = await open_link(carded.server, digest["textcard"]["url"])
    assert (status, path) == (200, "/admin/tasks") and "流失回访：李娜" in page


async def test_the_digest_links_to_the_list_and_an_escalation_to_the_late_task(sessions: SessionFactory) -> None:
    now = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    async with sessions() as session, session.begin():
        store = Store(code="jingan", name="静安店")
        session.add(store)
        await session.flush()
        zhang = Staff(userid="zhangsan", name="张三", store_id=store.id)
        session.add_all([zhang, Staff(userid="boss", name="王店长", store_id=store.id, role="manager")])
        await session.flush()
        late = StaffTask(dedupe_key="late", staff_id=zhang.id, kind="care", title="生日花束", due_date=date(2026, 11, 21))
        session.add(late)
    assert (await send_digests(sessions, Renderer(), SHANGHAI, now, "wecom")).escalations == 1
    async with sessions() as session:
        rows = {r.dedupe_key: r for r in (await session.execute(select(OutboxEntry))).scalars()}
    assert json.loads(rows["digest:zhangsan:2026-11-24"].meta) == {"link": "/admin/tasks", "title": "今日待办：1 个任务"}
    escalation = rows[f"escalate:{late.id}"]
    assert escalation.recipient == "boss"
    assert json.loads(escalation.meta) == {"link": f"/admin/tasks/{late.id}", "title": "任务逾期：生日花束"}


async def test_without_a_console_the_prompt_stays_text_without_a_link(corp: Corp) -> None:
    await owned_by_zhangsan(corp, BOB, "李娜")
    await corp.callback(contact_event("del_follow_user", BOB))
    (churn,) = await cards(corp, 1)
    assert churn["msgtype"] == "text" and "客户流失提醒" in churn["text"]["content"]
    assert "http" not in churn["text"]["content"]


async def test_the_fake_cloud_cuts_card_fields_as_wecom_does_and_refuses_a_url_without_scheme(
    cloud: FakeWeComCloud, http: aiohttp.ClientSession
) -> None:
    client = WeComClient(http, cloud.base_url, CORP, APP_SECRET, attempts=1)
    await client.send_textcard_to_staff("zhangsan", AGENT, "王" * 50, "描述", "https://a.example/x", btntxt="去处理一下吧")
    (shown,) = [d.body["textcard"] for d in cloud.deliveries(SEND)]
    assert shown["title"].startswith("王" * 42) and shown["title"].endswith("\ufffd")  # 128 bytes: mid-character
    assert shown["btntxt"] == "去处理一"
    with pytest.raises(WeComApiError):
        await client.send_textcard_to_staff("zhangsan", AGENT, "标题", "描述", "a.example/x")


# -- the sandbox staff panel ------------------------------------------------------------

@pytest.fixture
async def panel(db_url: str, tmp_path: Path, sessions: SessionFactory) -> AsyncIterator[RunningServer]:
    settings = load_settings(write_config(tmp_path, db_url, CONSOLE))
    async with sessions() as session, session.begin():
        session.add(Staff(userid="chenjing", name="陈静", role="manager"))
    async with aiohttp.ClientSession() as http:
        running = await start_server(build_app(settings), http)
        yield running
        await running.stop()


async def queue_prompt(server: RunningServer, sessions: SessionFactory, key: str, text: str, link: str | None) -> None:
    row = NewOutboxMessage(key, "sandbox", "chenjing", "staff_prompt", text, meta=prompt_meta(link, "标题"))
    async with sessions() as session, session.begin():
        await enqueue(session, [row], utcnow())
    server.app[DELIVERY].wake()


async def test_the_sandbox_panel_gets_the_plain_console_link_as_the_last_line_never_a_signed_one(
    panel: RunningServer, sessions: SessionFactory
) -> None:
    async with panel.client.get(f"{panel.base}/sandbox/events", params={"staff": "chenjing"}) as stream:
        await queue_prompt(panel, sessions, "prompt:task", "新任务 #5：回访王芳\n", "/admin/tasks/5")
        task = await next_event(stream)
        await queue_prompt(panel, sessions, "prompt:list", "早上好，你有 2 个待办任务", "/admin/tasks")
        listing = await next_event(stream)
        await queue_prompt(panel, sessions, "prompt:plain", "好的，任务 #5 已完成。", None)
        plain = await next_event(stream)
    first, line = task["text"].split("\n")
    # The panel and its stream need no login: the link opens after a console login.
    assert first == "新任务 #5：回访王芳" and line == f"打开任务：{PUBLIC}/admin/tasks/5"
    assert listing["text"].split("\n")[1] == f"打开任务列表：{PUBLIC}/admin/tasks"
    assert plain["text"] == "好的，任务 #5 已完成。"
    # Reloaded from history, the prompts read as they arrived: links included.
    async with panel.client.get(f"{panel.base}/sandbox/staff/chenjing/messages") as response:
        history = [m["text"] for m in (await response.json())["messages"]]
    assert history == [task["text"], listing["text"], plain["text"]]
    assert not any("sig=" in text for text in history)
    assert (await open_link(panel, line.split("：", 1)[1]))[1] == "/admin/login"


async def test_without_a_console_the_sandbox_prompt_has_no_link(
    server: RunningServer, sessions: SessionFactory
) -> None:
    async with sessions() as session, session.begin():
        session.add(Staff(userid="chenjing", name="陈静"))
    async with server.client.get(f"{server.base}/sandbox/events", params={"staff": "chenjing"}) as stream:
        await queue_prompt(server, sessions, "prompt:task", "新任务 #5：回访王芳", "/admin/tasks/5")
        assert (await next_event(stream))["text"] == "新任务 #5：回访王芳"


@needs_chromium
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_panel_shows_the_link_as_a_link_and_everything_else_as_text(
    panel: RunningServer, sessions: SessionFactory, browser: Any
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    page = await browser.new_page(locale="zh-CN")
    await page.goto(f"{panel.base}/sandbox#staff")
    await page.get_by_test_id("staff-item").filter(has_text="陈静").click()
    await playwright_api.expect(page.get_by_test_id("connection-status")).to_contain_text("已连接")
    await queue_prompt(panel, sessions, "prompt:task", "新任务 #5：<b>回访</b> 王芳 <img src=x onerror=alert(1)>",
                       "/admin/tasks/5")
    prompt = page.locator('[data-testid="staff-message"][data-direction="out"]')
    await playwright_api.expect(prompt).to_have_count(1)
    links = prompt.get_by_test_id("staff-message-link")
    await playwright_api.expect(links).to_have_count(1)
    href = await links.first.get_attribute("href")
    assert href == f"{PUBLIC}/admin/tasks/5"
    assert await links.first.inner_text() == href
    bubble = prompt.locator(".bubble")
    assert "<b>回访</b> 王芳 <img src=x onerror=alert(1)>" in await bubble.inner_text()
    assert await bubble.locator("b, img").count() == 0  # shown as text, never as markup


# -- the calendar's mass send: a confirmation task ---------------------------------------

async def test_a_mass_send_makes_one_confirmation_task_that_its_prompt_links_to(sessions: SessionFactory) -> None:
    now = datetime(2026, 12, 4, 2, 0, 30, tzinfo=UTC)  # Friday 10:00:30 in Shanghai
    async with sessions() as session, session.begin():
        store = Store(code="jingan", name="静安店")
        session.add(store)
        await session.flush()
        zhang = Staff(userid="zhangsan", name="张三", store_id=store.id)
        session.add(zhang)
        await session.flush()
        fang = Member(name="王芳", store_id=store.id, owner_staff_id=zhang.id)
        session.add(fang)
        await session.flush()
        session.add(MemberIdentity(member_id=fang.id, platform="wecom", external_id="wmAAAA01"))  # type: ignore[arg-type]
        session.add(EntrySpec("new-season", "calendar/new_season.txt.j2", "wecom_mass", Audience(everyone=True),
                              "0 10 * * fri", title="新品季").row())
    options = CalendarOptions({"name": "小禾", "title": "主理人", "signature": "小禾", "default_line": "", "tips": {}})
    for _ in range(2):  # a rerun of the same window (a crash, a second scheduler) adds nothing
        await run_calendar(sessions, options, Renderer(), SHANGHAI, now, since=now - timedelta(minutes=1))

    async with sessions() as session:
        (task,) = (await session.execute(select(StaffTask))).scalars().all()
        (prompt,) = (await session.execute(
            select(OutboxEntry).where(OutboxEntry.kind == "staff_prompt"))).scalars().all()
    assert (task.kind, task.staff_id, task.due_date, task.status) == ("mass_send_confirm", zhang.id, date(2026, 12, 4), "open")
    assert task.dedupe_key == "cal:new-season:20261204T1000:s:zhangsan:confirm" and task.title == "群发确认：新品季"
    assert task.body == prompt.body and "「新品季」" in prompt.body
    assert json.loads(prompt.meta) == {"link": f"/admin/tasks/{task.id}", "title": "群发确认：新品季"}
