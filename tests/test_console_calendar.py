"""The console's content calendar: the month's grid with reach, the entry form with live
checking (the same messages as `siyu calendar load`) and a preview, saving one entry,
pausing and resuming — through the real server, on SQLite and PostgreSQL; and the form's
and the grid's plain functions."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import select

from bot.console.config_words import spoken
from bot.console.i18n import translator
from bot.console.calendar_form import by_field, entry_item, field_of, form_values, names, values_of
from bot.console.calendar_month import by_day, month_of, shift, weeks
from bot.settings.calendar_context import calendar_context
from bot.settings.delivery import preview_policy
from bot.settings.model import Settings, load_settings
from bot.shared.keys import SETTINGS
from bot.web.app import build_app
from scheduler.calendar import EntrySpec
from scheduler.calendar_preview import preview_calendar
from scheduler.calendar_run import CalendarOptions, calendar_entries, load_calendar, run_calendar
from scheduler.calendar_simulation import Outcome
from storage.audiences import Audience
from storage.engine import SessionFactory
from storage.models import CalendarEntry, Member, MemberIdentity, StaffTask, utcnow
from storage.tags import apply_tag, ensure_tag
from tests.browser_harness import needs_chromium, screenshot_path
from tests.conftest import start_server, write_config
from tests.console_harness import CONSOLE_CONFIG, PASSWORD, ConsoleClient, ConsoleServer, seed_brand

LogIn = Callable[..., Awaitable[ConsoleClient]]
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 4, 2, 0, 30, tzinfo=UTC)  # Friday 4 December 2026, 10:00:30 in Shanghai


@pytest.fixture
async def console(db_url: str, tmp_path: Path, sessions: SessionFactory) -> AsyncIterator[ConsoleServer]:
    """The harness's console, with a folder of operator templates (one misspelt)."""
    folder = tmp_path / "templates" / "calendar"
    folder.mkdir(parents=True)
    (folder / "nickname.txt.j2").write_text("{{ member.nickname }}，你好", encoding="utf-8")
    settings = load_settings(write_config(tmp_path, db_url, CONSOLE_CONFIG + '\n[templates]\ndir = "templates"\n'))
    brand = await seed_brand(sessions)
    async with aiohttp.ClientSession() as http:
        running = await start_server(build_app(settings), http)
        yield ConsoleServer(running, brand)
        await running.stop()


def settings_of(console: ConsoleServer) -> Settings:
    return console.server.app[SETTINGS]


async def add(sessions: SessionFactory, *entries: EntrySpec) -> None:
    async with sessions() as session, session.begin():
        session.add_all([entry.row() for entry in entries])


async def give_ids(sessions: SessionFactory, member_id: int, **ids: str) -> None:
    async with sessions() as session, session.begin():
        session.add_all([MemberIdentity(member_id=member_id, platform=p, external_id=e) for p, e in ids.items()])


async def rows(sessions: SessionFactory) -> dict[str, CalendarEntry]:
    async with sessions() as session:
        return {e.id: e for e in (await session.execute(select(CalendarEntry))).scalars()}


def day_cells(page: str) -> dict[str, str]:
    """Each day cell of the month grid, by its date."""
    return {m.group(1): m.group(2) for m in re.finditer(
        r'data-testid="calendar-day" data-date="([\d-]+)">(.*?)</td>', page, re.S)}


def firing(cell: str, entry_id: str) -> str | None:
    found = re.search(rf'<a class="firing[^"]*"[^>]*data-entry="{re.escape(entry_id)}".*?</a>', cell, re.S)
    return found.group(0) if found else None


WEEKLY = EntrySpec("weekly", "calendar/moments_post.txt.j2", "staff_task", Audience(stores=("jingan",)), "0 10 * * fri",
                   title="周五发圈")
XMAS = EntrySpec("xmas", "calendar/new_season.txt.j2", "wecom_mass", Audience(everyone=True),
                 at=datetime(2026, 12, 24, 11, 0, tzinfo=UTC), title="圣诞")
DAILY = EntrySpec("daily", "calendar/new_season.txt.j2", "oa", Audience(everyone=True), "0 9 * * *", paused=True)


# ── The month ──────────────────────────────────────────────────────────────────────────


async def test_the_month_shows_each_entry_on_its_days_with_whom_it_reaches(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    await add(sessions, WEEKLY, XMAS, DAILY)
    await give_ids(sessions, console.brand.members["王芳"], wecom="wmWANGFANG")
    page = await (await log_in("ops")).get("/admin/calendar?month=2026-12")
    cells = day_cells(page)
    assert len(cells) == 35 and "2026-11-30" in cells and "2027-01-03" in cells  # Monday to Sunday
    fridays = {"2026-12-04", "2026-12-11", "2026-12-18", "2026-12-25"}
    assert {d for d, cell in cells.items() if firing(cell, "weekly")} == fridays
    weekly = firing(cells["2026-12-04"], "weekly")
    assert weekly and "10:00" in weekly and "周五发圈" in weekly and 'data-reached="2"' in weekly  # 王芳 and 李娜: 静安店
    # Christmas Eve, 19:00 in Shanghai: all three members, only 王芳 has a WeCom id.
    xmas = firing(cells["2026-12-24"], "xmas")
    assert xmas and "19:00" in xmas and 'data-reached="1"' in xmas and 'data-audience="3"' in xmas
    assert "没有企业微信 2" in xmas  # held back, on hover
    assert not firing(cells["2026-12-23"], "xmas")
    # A paused entry shows on its days as paused, reaching no one.
    daily = firing(cells["2026-12-01"], "daily")
    assert daily and "paused" in daily and "已暂停" in daily and "data-reached=\"0\"" in daily
    assert not firing(cells["2026-11-30"], "daily")  # November is not this page's month
    assert "?month=2026-11" in page and "?month=2027-01" in page
    # The next month: the weekly entry goes on, Christmas does not.
    january = day_cells(await (await log_in("ops")).get("/admin/calendar?month=2027-01"))
    assert firing(january["2027-01-01"], "weekly") and not any(firing(c, "xmas") for c in january.values())


async def test_a_months_counts_are_kept_briefly_but_a_paused_entry_shows_at_once(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    await add(sessions, WEEKLY)
    client = await log_in("ops")
    before = firing(day_cells(await client.get("/admin/calendar?month=2026-12"))["2026-12-04"], "weekly")
    assert before and 'data-reached="2"' in before
    async with sessions() as session, session.begin():  # a third member for 静安店
        session.add(Member(name="孙丽", store_id=console.brand.stores["jingan"],
                           owner_staff_id=console.brand.staff["liuyang"]))
    kept = firing(day_cells(await client.get("/admin/calendar?month=2026-12"))["2026-12-04"], "weekly")
    assert kept and 'data-reached="2"' in kept  # counted a moment ago: not counted again
    await client.post("/admin/calendar/weekly/pause", {})
    paused = firing(day_cells(await client.get("/admin/calendar?month=2026-12"))["2026-12-04"], "weekly")
    assert paused and "已暂停" in paused
    await client.post("/admin/calendar/weekly/resume", {})
    again = firing(day_cells(await client.get("/admin/calendar?month=2026-12"))["2026-12-04"], "weekly")
    assert again and 'data-reached="3"' in again  # a changed calendar is counted afresh


# ── Live checking ──────────────────────────────────────────────────────────────────────


def typed(**fields: Any) -> dict[str, Any]:
    """A form as an operator fills it in: a weekly official-account entry for 静安店."""
    return {"id": "new-season", "title": "新品季", "when": "cron", "cron": "0 10 * * fri", "at": "", "channel": "oa",
            "template": "calendar/new_season.txt.j2", "scheme": "value", "layers": "", "lifecycle": "", "tags": "",
            "exclude_tags": "", "stores": "jingan"} | fields


async def test_validation_names_every_problem_by_field_with_the_messages_load_gives(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    client = await log_in("ops")
    answer = await client.post_json("/admin/calendar/validate", typed(
        cron="0 10 * * someday", template="calendar/nickname.txt.j2", tags="面包控, 没有这个标签",
        exclude_tags="勿扰", stores="jingan, nowhere"))
    assert answer["ok"] is False and answer["preview"] is None
    problems = answer["problems"]
    assert problems["cron"][0].startswith("不是有效的 cron 规则")  # in the console's language, by field
    assert "nickname" in problems["template"][0]
    assert set(problems) == {"cron", "template"}  # the database is asked only of an entry that reads whole
    answer = await client.post_json("/admin/calendar/validate", typed(
        tags="面包控, 没有这个标签", exclude_tags="勿扰", stores="jingan, nowhere"))
    problems = answer["problems"]
    assert problems["tags"] == ["还没有「没有这个标签」这个标签，也没有规则会打上它"]  # 面包控: a tag rule gives it
    assert problems["exclude_tags"][0].startswith("还没有「勿扰」")
    assert problems["stores"] == ["没有叫「nowhere」的门店"]
    assert answer["preview"] is not None  # it reads as an entry: the preview helps mend the names

    # The very messages `siyu calendar load` gives for the same entry in a file.
    settings = settings_of(console)
    context = calendar_context(settings)
    for fields in (dict(cron="0 10 * * someday", template="calendar/nickname.txt.j2"),
                   dict(tags="面包控, 没有这个标签", exclude_tags="勿扰", stores="jingan, nowhere"),
                   dict(when="at", at="2026-13-01T10:00", layers="super, 没有这层", channel="sms")):
        answer = await client.post_json("/admin/calendar/validate", typed(**fields))
        given = sorted(p for found in answer["problems"].values() for p in found)
        _, loaded = await load_calendar(sessions, toml_of(entry_item(form_values(typed(**fields)))), "f.toml", context, utcnow())
        assert given and given == sorted(spoken(p.split(': ', 2)[2], translator("zh")).text for p in loaded)
    assert await rows(sessions) == {}  # checking stores nothing

    # Once a member has the tag, excluding it is fine; an empty audience and a taken id are problems.
    async with sessions() as session, session.begin():
        await apply_tag(session, console.brand.members["李娜"], await ensure_tag(session, "勿扰"), "staff", "liuyang", utcnow())
    await add(sessions, WEEKLY)
    answer = await client.post_json("/admin/calendar/validate", typed(id="weekly", exclude_tags="勿扰", stores=""))
    assert set(answer["problems"]) == {"id", "audience"} and "已经有条目在用" in answer["problems"]["id"][0]
    # ...but not the entry's own id while it is being edited.
    answer = await client.post_json("/admin/calendar/validate", typed(id="weekly", original="weekly", exclude_tags="勿扰"))
    assert answer["ok"] is True and answer["problems"] == {}


def toml_of(item: dict[str, Any]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return '"' + str(v) + '"'
    return "[[entries]]\n" + "".join(f"{k} = {value(v)}\n" for k, v in item.items() if v is not None)


async def test_a_valid_entry_previews_the_text_for_an_audience_member_its_next_times_and_reach(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    await give_ids(sessions, console.brand.members["王芳"], oa="oWANGFANG")
    client = await log_in("ops")
    answer = await client.post_json("/admin/calendar/validate", typed())
    assert answer["ok"] is True and answer["problems"] == {}
    preview = answer["preview"]
    assert preview["sample"] == {"name": "王芳", "store": "静安店", "made_up": False}
    assert preview["text"].startswith("王芳，换季啦，我是小禾") and "静安店" in preview["text"]
    assert len(preview["upcoming"]) == 5 and all(t.endswith("10:00 周五") for t in preview["upcoming"])
    first = datetime.strptime(preview["upcoming"][0][:16], "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)
    assert timedelta(0) < first - utcnow() <= timedelta(days=7)
    # 静安店: 王芳 and 李娜; only 王芳 follows the official account.
    assert (preview["audience"], preview["reached"], preview["held"]) == (2, 1, [["没有公众号", 1]])

    # No one in the audience yet: a made-up member, and a one-off says when it fires, once.
    answer = await client.post_json("/admin/calendar/validate", typed(
        stores="", layers="super", when="at", at="2027-01-08T19:30", channel="staff_task",
        template="calendar/moments_post.txt.j2"))
    preview = answer["preview"]
    assert answer["ok"] and preview["sample"]["made_up"] is True and "示例门店" in preview["text"]
    assert preview["upcoming"] == ["2027-01-08 19:30 周五"] and preview["audience"] == 0


# ── Saving ─────────────────────────────────────────────────────────────────────────────


async def test_an_entry_made_in_the_form_is_stored_and_shows_in_the_month_and_the_preview(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    client = await log_in("ops")
    assert 'data-testid="calendar-form"' in await client.get("/admin/calendar/new")
    page = await client.post("/admin/calendar/new", typed(
        id="xmas-eve", title="平安夜", when="at", at="2026-12-24T19:00", channel="staff_task",
        template="calendar/moments_post.txt.j2", stores="", everyone="on", exclude_tags="面包控"))
    assert "已保存「xmas-eve」" in page and "平安夜" in page  # back on the month it fires in
    assert firing(day_cells(page)["2026-12-24"], "xmas-eve")
    (entry,) = await calendar_entries(sessions)
    assert (entry.id, entry.channel, entry.title, entry.paused) == ("xmas-eve", "staff_task", "平安夜", False)
    assert entry.audience == Audience(everyone=True, exclude_tags=("面包控",))
    assert entry.at == datetime(2026, 12, 24, 11, 0, tzinfo=UTC)
    # What `siyu calendar preview` runs sees it: every member has an owner, so three are reached.
    settings = settings_of(console)
    context = calendar_context(settings)
    preview = await preview_calendar(sessions, await calendar_entries(sessions), context.renderer, context.persona,
                                     preview_policy(settings), settings.delivery.cap_scheme, date(2026, 12, 24), 1)
    (outcome,) = preview.outcomes
    assert (outcome.entry.id, f"{outcome.at:%H:%M}", outcome.reached) == ("xmas-eve", "19:00", 3)


async def test_editing_changes_that_entry_only_and_never_resends_what_was_sent(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    await add(sessions, WEEKLY, XMAS)
    before = await rows(sessions)
    options = CalendarOptions({"name": "小禾", "signature": "小禾"})
    settings = settings_of(console)
    renderer = calendar_context(settings).renderer
    (fired,) = (await run_calendar(sessions, options, renderer, SHANGHAI, NOW)).fired  # Friday 10:00: one task, 刘洋's
    assert (fired.entry, fired.rows) == ("weekly", 1)

    client = await log_in("ops")
    form = await client.get("/admin/calendar/weekly/edit")
    assert 'value="周五发圈"' in form and 'value="0 10 * * fri"' in form and "readonly" in form
    assert 'data-testid="preview-text"' in form and "静安店" in form  # the preview, without JavaScript
    page = await client.post("/admin/calendar/weekly/edit", typed(
        id="renamed", title="周五发圈 2", cron="0 10 * * fri", channel="staff_task",
        template="calendar/moments_post.txt.j2", stores="jingan, xuhui"))
    assert "已保存「weekly」" in page
    after = await rows(sessions)
    assert set(after) == {"weekly", "xmas"}  # the id does not change
    assert (after["weekly"].title, json_audience(after["weekly"])) == ("周五发圈 2", {"stores": ["jingan", "xuhui"]})
    assert after["weekly"].updated_at > before["weekly"].updated_at
    assert (after["xmas"].updated_at, after["xmas"].title, after["xmas"].audience) == (
        before["xmas"].updated_at, before["xmas"].title, before["xmas"].audience)
    # The same occurrence again (a rerun of the window): 刘洋 already has hers; 周敏 of 徐汇店
    # is new to the audience and gets one. Nothing is sent twice.
    report = await run_calendar(sessions, options, renderer, SHANGHAI, NOW, NOW - timedelta(minutes=1))
    assert [f.entry for f in report.fired] == ["weekly"]
    async with sessions() as session:
        keys = sorted((await session.execute(select(StaffTask.dedupe_key).where(
            StaffTask.dedupe_key.like("cal:%")))).scalars())  # type: ignore[union-attr]
    assert keys == ["cal:weekly:20261204T1000:s:liuyang", "cal:weekly:20261204T1000:s:zhoumin"]


def json_audience(row: CalendarEntry) -> dict[str, Any]:
    return Audience.from_json(row.audience).as_dict()


async def test_an_invalid_save_changes_nothing_and_shows_the_problems_with_what_was_typed(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    await add(sessions, WEEKLY)
    before = await rows(sessions)
    client = await log_in("ops")
    page = await client.post("/admin/calendar/weekly/edit", typed(
        title="改了一半", cron="0 10 * * someday", stores="jingan, nowhere"), expect=400)
    assert "不是有效的 cron 规则" in page and 'value="0 10 * * someday"' in page and 'value="改了一半"' in page
    assert 'value="jingan, nowhere"' in page
    page = await client.post("/admin/calendar/weekly/edit", typed(title="改了一半", stores="jingan, nowhere"), expect=400)
    assert "没有叫「nowhere」的门店" in page
    page = await client.post("/admin/calendar/new", typed(id="weekly"), expect=400)
    assert "编号「weekly」已经有条目在用" in page
    page = await client.post("/admin/calendar/new", typed(id="has space", template=""), expect=400)
    assert "必须填写：最多 64 个字符" in page and 'data-testid="problems-template"><li>必须填写</li>' in page
    after = await rows(sessions)
    assert set(after) == {"weekly"} and after["weekly"].title == "周五发圈"
    assert after["weekly"].updated_at == before["weekly"].updated_at
    await client.get("/admin/calendar/nothing-here/edit", expect=404)


# ── Pause and resume ───────────────────────────────────────────────────────────────────


async def test_a_paused_entry_does_not_fire_and_resuming_does_not_catch_up(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    minutely = EntrySpec("minutely", "calendar/moments_post.txt.j2", "staff_task", Audience(stores=("jingan",)),
                         "* * * * *", title="每分钟")
    await add(sessions, minutely, WEEKLY)
    options = CalendarOptions({"name": "小禾", "signature": "小禾"}, catch_up_max=100)  # catch up all it may
    renderer = calendar_context(settings_of(console)).renderer
    client = await log_in("ops")
    start = utcnow()
    page = await client.post("/admin/calendar/minutely/pause", {"next": "/admin/calendar?month=2026-12"})
    assert "已暂停「minutely」" in page
    entries = re.findall(r'<tr data-testid="calendar-entry" data-entry="(\w+)".*?data-testid="entry-status">(.*?)</td>',
                         page, re.S)
    assert [(e, "已暂停" in status) for e, status in entries] == [("minutely", True), ("weekly", False)]
    report = await run_calendar(sessions, options, renderer, SHANGHAI, start + timedelta(minutes=10), start - timedelta(hours=1))
    assert report.fired == []

    # Resumed after downtime: the next scan covers the paused hour, and fires only what
    # falls due after the resume.
    page = await client.post("/admin/calendar/minutely/resume", {"next": "/admin/calendar/minutely/edit"})
    assert "已恢复「minutely」" in page and 'data-testid="pause-button"' in page
    resumed = (await rows(sessions))["minutely"].resumed_at
    assert resumed is not None and resumed >= start
    report = await run_calendar(sessions, options, renderer, SHANGHAI, resumed + timedelta(minutes=3), start - timedelta(hours=1))
    times = [f.at for f in report.fired]
    assert len(times) == 3 and all(t > resumed for t in times)


# ── In a browser ───────────────────────────────────────────────────────────────────────


@needs_chromium
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_in_a_browser_the_form_shows_problems_and_the_preview_as_the_operator_types(
    console: ConsoleServer, sessions: SessionFactory, browser: Any, tmp_path: Path
) -> None:
    expect = pytest.importorskip("playwright.async_api").expect
    page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    await page.goto(console.base + "/admin/calendar/new")
    await page.get_by_test_id("login-name").fill("ops")
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-button").click()
    await expect(page.get_by_test_id("field-at")).to_be_hidden()  # recurring until "once" is picked
    await page.get_by_test_id("field-id").fill("new-season")
    await page.get_by_test_id("field-repeat").select_option("cron")  # an expert's own line
    await page.get_by_test_id("field-cron").fill("0 10 * * someday")
    await page.get_by_test_id("field-channel").select_option("staff_task")
    await page.get_by_text("高级：使用模板文件").click()
    await page.get_by_test_id("field-template").fill("calendar/moments_post.txt.j2")
    await page.get_by_test_id("field-stores").fill("jingan, nowhere")
    await expect(page.get_by_test_id("problems-cron")).to_contain_text("不是有效的 cron 规则")
    await page.get_by_test_id("field-cron").fill("0 10 * * fri")
    await expect(page.get_by_test_id("problems-cron")).to_be_empty()
    await expect(page.get_by_test_id("problems-stores")).to_contain_text("没有叫「nowhere」的门店")
    await page.get_by_test_id("field-stores").fill("")
    await page.locator('button.chip[data-add-to="stores"][data-value="静安店"]').click()  # a chip fills it in, by name
    await expect(page.get_by_test_id("field-stores")).to_have_value("静安店")
    await expect(page.get_by_test_id("form-problems")).to_be_hidden()
    await expect(page.get_by_test_id("preview-text")).to_contain_text("静安店")
    await expect(page.get_by_test_id("preview-times").locator("li")).to_have_count(5)
    await expect(page.get_by_test_id("preview-audience")).to_contain_text("受众 2 人")
    await page.screenshot(path=screenshot_path(tmp_path, "console-calendar-entry.png"), full_page=True)
    await page.get_by_test_id("save-button").click()
    await expect(page.get_by_test_id("calendar-notice")).to_contain_text("new-season")
    await expect(page.locator('[data-testid="calendar-entry"][data-entry="new-season"]')).to_be_visible()
    assert [e.id for e in await calendar_entries(sessions)] == ["new-season"]


# ── Who may ────────────────────────────────────────────────────────────────────────────


async def test_every_post_needs_the_csrf_token(console: ConsoleServer, log_in: LogIn, sessions: SessionFactory) -> None:
    await add(sessions, WEEKLY)
    client = await log_in("ops")
    assert "表单已过期" in await client.post("/admin/calendar/new", typed(id="forged"), expect=403, csrf=False)
    await client.post("/admin/calendar/weekly/pause", {"csrf": "guessed"}, expect=403, csrf=False)
    async with client.http.post(console.base + "/admin/calendar/validate", json=typed()) as response:
        assert response.status == 403
    after = await rows(sessions)
    assert set(after) == {"weekly"} and not after["weekly"].paused


async def test_staff_may_not_see_or_change_the_calendar(console: ConsoleServer, log_in: LogIn, sessions: SessionFactory) -> None:
    await add(sessions, WEEKLY)
    for login in ("liuyang", "chenjing"):  # a store manager neither
        client = await log_in(login)
        for path in ("/admin/calendar", "/admin/calendar?month=2026-12", "/admin/calendar/new", "/admin/calendar/weekly/edit"):
            await client.get(path, expect=403)
        await client.post("/admin/calendar/weekly/pause", {}, expect=403)
        await client.post("/admin/calendar/new", typed(id="by-staff"), expect=403)
        await client.post("/admin/calendar/weekly/edit", typed(title="店员改的"), expect=403)
        headers = {"X-CSRF-Token": await client.csrf()}
        async with client.http.post(console.base + "/admin/calendar/validate", json=typed(), headers=headers) as response:
            assert response.status == 403
        assert "内容日历" not in await client.get("/admin/tasks")  # not in the menu either
    after = await rows(sessions)
    assert set(after) == {"weekly"} and after["weekly"].title == "周五发圈" and not after["weekly"].paused


# ── The plain functions ────────────────────────────────────────────────────────────────


def test_the_form_reads_as_the_entry_a_file_would_hold() -> None:
    values = form_values(typed(layers="super，core、 ordinary", exclude_tags="勿扰\n", cron="0  10 * *   fri",
                               everyone="true", paused="on"))
    assert entry_item(values) == {
        "id": "new-season", "title": "新品季", "channel": "oa", "template": "calendar/new_season.txt.j2", "paused": True,
        "cron": "0 10 * * fri",
        "audience": {"layers": ["super", "core", "ordinary"], "exclude_tags": ["勿扰"], "stores": ["jingan"],
                     "everyone": True, "scheme": "value"},
    }
    once = entry_item(form_values(typed(when="at", at="2026-12-24T19:00", channel="", stores="")))
    assert once["at"] == "2026-12-24T19:00" and "cron" not in once and once["channel"] is None and once["audience"] == {}
    assert form_values(typed(when="at", at="2026-12-24 19:00"))["at"] == "2026-12-24T19:00"  # the box shows it
    assert names(" a, b ,, c ") == ["a", "b", "c"]
    spec = EntrySpec("x", "t.j2", "oa", Audience(layers=("super",), tags=("面包控", "咖啡")), at=datetime(2026, 12, 24, 11, tzinfo=UTC))
    shown = values_of(spec, SHANGHAI)
    assert (shown["when"], shown["at"], shown["tags"], shown["layers"]) == ("at", "2026-12-24T19:00", "面包控, 咖啡", "super")
    assert entry_item(form_values(shown))["audience"] == {"layers": ["super"], "tags": ["面包控", "咖啡"], "scheme": "value"}


def test_each_message_goes_to_its_field() -> None:
    assert [field_of(p) for p in (
        "cron: not a valid cron line", 'say when with either cron = "…" or at = "…", not both', "at: must be…",
        "audience.tags: unknown tag", "audience.scheme: unknown scheme", "audience: everyone = true leaves no room",
        "audience is empty: say who", "template: required", "id: required", "something else entirely",
    )] == ["cron", "when", "at", "tags", "scheme", "audience", "audience", "template", "id", "entry"]
    assert by_field(["cron: a", "cron: b", "id: c"]) == {"cron": ["cron: a", "cron: b"], "id": ["id: c"]}


def test_the_month_grid() -> None:
    today = date(2026, 11, 24)
    assert month_of("2026-12", today) == date(2026, 12, 1)
    assert month_of("2026-13", today) == month_of("December", today) == month_of(None, today) == date(2026, 11, 1)
    assert shift(date(2026, 12, 1), 1) == date(2027, 1, 1) and shift(date(2026, 1, 1), -1) == date(2025, 12, 1)
    grid = weeks(date(2026, 2, 1))  # 1 February 2026 is a Sunday
    assert grid[0][0] == date(2026, 1, 26) and grid[0][-1] == date(2026, 2, 1) and all(len(w) == 7 for w in grid)
    a, b = (EntrySpec(i, "t", "oa", Audience(everyone=True), "0 10 * * *") for i in "ab")
    at = datetime(2026, 12, 4, 10, tzinfo=SHANGHAI)
    days = by_day([Outcome(b, at, 5, 3, held={"opted_out": 2}), Outcome(a, at, 5, 4)], [(a, at - timedelta(hours=1))])
    assert [(f.entry.id, f.paused, f.reached) for f in days[date(2026, 12, 4)]] == [("a", True, 0), ("a", False, 4),
                                                                                   ("b", False, 3)]
