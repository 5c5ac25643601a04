"""The content calendar: expansion in the brand's zone (and across DST elsewhere), the
file checked whole, export and load round trip, audiences selected in SQL, firing that
reruns harmlessly and catches up once, and the preview's counts — pure, and through the
database on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.cli import calendar as calendar_cli
from bot.settings.calendar_context import calendar_context
from bot.settings.layers import DEFAULT_SCHEMES
from bot.settings.model import Settings
from content_templates.renderer import Renderer
from scheduler.calendar import (
    EMPTY_AUDIENCE,
    CalendarContext,
    EntrySpec,
    calendar_toml,
    due,
    occurrences,
    parse_at,
    parse_calendar,
)
from scheduler.calendar_preview import preview_calendar
from scheduler.calendar_run import CURSOR, CalendarOptions, calendar_entries, load_calendar, run_calendar, set_paused
from scheduler.calendar_simulation import PreviewPolicy
from scheduler.policy import QuietHours
from storage import audiences
from storage.audiences import Audience
from storage.cursors import load_cursor
from storage.engine import SessionFactory, create_database_engine, session_factory
from storage.models import (
    CalendarEntry,
    CustomerGroup,
    GroupMembership,
    InboxEntry,
    LayerAssignment,
    Member,
    MemberIdentity,
    OutboxEntry,
    Staff,
    StaffTask,
    Store,
)
from storage.tags import apply_tag, ensure_tag

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
PERSONA = {"name": "小禾", "title": "主理人", "signature": "小禾 · 禾麦烘焙", "default_line": "", "tips": {}}
SCHEMES = {s.name: [layer.name for layer in s.layers] for s in DEFAULT_SCHEMES}
# Friday 4 December 2026, 10:00:30 in Shanghai.
NOW = datetime(2026, 12, 4, 2, 0, 30, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def entry(cron: str | None = None, at: datetime | None = None, entry_id: str = "e", **audience: Any) -> EntrySpec:
    return EntrySpec(entry_id, "calendar/new_season.txt.j2", "oa", Audience(**audience) if audience else Audience(everyone=True),
                     cron, at)


@pytest.fixture
def context(tmp_path: Path) -> CalendarContext:
    (tmp_path / "calendar").mkdir()
    (tmp_path / "calendar" / "nickname.txt.j2").write_text("{{ member.nickname }}，你好", encoding="utf-8")
    (tmp_path / "calendar" / "named.txt.j2").write_text("{{ member.name }}，新品到了", encoding="utf-8")
    return CalendarContext(SHANGHAI, SCHEMES, Renderer([tmp_path]), PERSONA)


# ── Expansion ──────────────────────────────────────────────────────────────────────────


def test_a_weekly_cron_fires_on_friday_at_ten_shanghai_time() -> None:
    friday_ten = utc(2026, 12, 4, 2, 0)
    weekly = entry("0 10 * * fri")
    assert occurrences(weekly, SHANGHAI, utc(2026, 11, 30), utc(2026, 12, 7)) == [friday_ten]
    # The window is (start, end]: a scan ending on the minute fires it, the next does not again.
    assert occurrences(weekly, SHANGHAI, friday_ten - timedelta(minutes=1), friday_ten) == [friday_ten]
    assert occurrences(weekly, SHANGHAI, friday_ten, friday_ten + timedelta(minutes=1)) == []
    # APScheduler numbers weekdays from Monday = 0 (not crontab's Sunday = 0).
    assert occurrences(entry("0 9 * * 0"), SHANGHAI, utc(2026, 11, 30), utc(2026, 12, 7)) == [utc(2026, 11, 30, 1, 0)]  # Monday
    # Midnight in Shanghai is the previous day in UTC.
    assert occurrences(entry("0 0 1 * *"), SHANGHAI, utc(2026, 11, 25), utc(2026, 12, 5)) == [utc(2026, 11, 30, 16, 0)]


def test_new_york_spring_forward_fires_a_skipped_time_once_at_the_end_of_the_jump() -> None:
    daily = entry("30 2 * * *")  # 8 March 2026: 02:00 EST jumps to 03:00 EDT
    assert occurrences(daily, NEW_YORK, utc(2026, 3, 7), utc(2026, 3, 10)) == [
        utc(2026, 3, 7, 7, 30),  # 02:30 EST
        utc(2026, 3, 8, 7, 0),  # 02:30 does not exist: 03:00 EDT
        utc(2026, 3, 9, 6, 30),  # 02:30 EDT
    ]
    start = datetime(2026, 3, 8, tzinfo=NEW_YORK).astimezone(UTC)
    end = datetime(2026, 3, 9, tzinfo=NEW_YORK).astimezone(UTC)
    hourly = occurrences(entry("0 * * * *"), NEW_YORK, start - timedelta(seconds=1), end - timedelta(seconds=1))
    assert len(hourly) == 23 == len(set(hourly))  # a 23-hour day: the 02:00 slot is the 03:00 one


def test_new_york_fall_back_fires_a_repeated_time_once() -> None:
    daily = entry("30 1 * * *")  # 1 November 2026: 02:00 EDT falls back to 01:00 EST
    assert occurrences(daily, NEW_YORK, utc(2026, 10, 31, 12), utc(2026, 11, 2, 12)) == [
        utc(2026, 11, 1, 5, 30),  # the first 01:30 (EDT) only
        utc(2026, 11, 2, 6, 30),
    ]
    start = datetime(2026, 11, 1, tzinfo=NEW_YORK).astimezone(UTC)
    hourly = occurrences(entry("0 * * * *"), NEW_YORK, start - timedelta(seconds=1), start + timedelta(hours=25, seconds=-1))
    assert len(hourly) == 24  # 25 hours, 24 wall-clock hours: 01:00 once


def test_a_one_off_at_is_read_in_the_zone_and_fires_once() -> None:
    at, problem = parse_at("2026-12-24 19:00", SHANGHAI)
    assert (at, problem) == (utc(2026, 12, 24, 11, 0), None)
    xmas = entry(at=at)
    assert occurrences(xmas, SHANGHAI, at - timedelta(minutes=1), at) == [at]
    assert occurrences(xmas, SHANGHAI, at, at + timedelta(days=1)) == []
    assert parse_at(datetime(2026, 12, 24, 19, 0), SHANGHAI)[0] == at  # a TOML local date-time too
    assert "does not exist" in str(parse_at("2026-03-08 02:30", NEW_YORK)[1])
    assert parse_at("2026-11-01 01:30", NEW_YORK)[0] == utc(2026, 11, 1, 5, 30)  # the first of two
    assert "without seconds" in str(parse_at(datetime(2026, 12, 24, 19, 0, 5), SHANGHAI)[1])
    assert "not a date" in str(parse_at("2026-02-30 10:00", SHANGHAI)[1])


def test_catch_up_takes_only_the_latest_missed_occurrence_within_the_window() -> None:
    hourly, once = entry("0 * * * *", entry_id="hourly"), entry(at=utc(2026, 12, 1, 2), entry_id="old")
    fire, let_go = due([hourly, once], SHANGHAI, NOW - timedelta(hours=5), NOW, timedelta(hours=24), 1)
    assert fire == [(hourly, utc(2026, 12, 4, 2, 0))] and let_go == 4
    fire, _ = due([hourly], SHANGHAI, NOW - timedelta(hours=5), NOW, timedelta(hours=24), 3)
    assert [at for _, at in fire] == [utc(2026, 12, 4, 0), utc(2026, 12, 4, 1), utc(2026, 12, 4, 2)]
    fire, _ = due([hourly], SHANGHAI, NOW - timedelta(hours=5), NOW, timedelta(hours=24), 0)
    assert fire == []
    # Down for three days: the at-entry of three days ago is older than the window.
    assert due([once], SHANGHAI, NOW - timedelta(days=4), NOW, timedelta(hours=24), 1)[0] == []
    paused = EntrySpec("p", "calendar/new_season.txt.j2", "oa", Audience(everyone=True), "* * * * *", paused=True)
    assert due([paused], SHANGHAI, NOW - timedelta(hours=1), NOW, timedelta(hours=24), 1)[0] == []


def test_a_resumed_entry_does_not_catch_up_what_fell_due_while_it_was_paused() -> None:
    resumed = EntrySpec("hourly", "calendar/new_season.txt.j2", "oa", Audience(everyone=True), "0 * * * *",
                        resumed_at=utc(2026, 12, 4, 0, 30))
    fire, let_go = due([resumed], SHANGHAI, NOW - timedelta(hours=5), NOW, timedelta(hours=24), 10)
    assert [at for _, at in fire] == [utc(2026, 12, 4, 1), utc(2026, 12, 4, 2)] and let_go == 0
    assert resumed == entry("0 * * * *", entry_id="hourly")  # running state, not content


# ── The file ───────────────────────────────────────────────────────────────────────────

GOOD = """\
[[entries]]
id = "new-season"
cron = "0 10 * * fri"
channel = "wecom_mass"
template = "calendar/new_season.txt.j2"
title = "新品季"
audience = { layers = ["super", "core"], exclude_tags = ["勿扰"] }

[[entries]]
id = "xmas"
at = "2026-12-24 19:00"
channel = "oa"
template = "calendar/new_season.txt.j2"
audience = { everyone = true }

[[entries]]
id = "moments"
cron = "30 9 * * mon,thu"
channel = "staff_task"
template = "calendar/moments_post.txt.j2"
title = "朋友圈"
audience = { lifecycle = ["active", "new"], stores = ["jingan"], tags = ["面包控"], scheme = "value", layers = ["ordinary"] }
paused = true
"""


def test_a_good_file_reads_into_entries(context: CalendarContext) -> None:
    entries, problems = parse_calendar(GOOD, "cal.toml", context)
    assert problems == []
    assert [e.id for e in entries] == ["new-season", "xmas", "moments"]
    assert entries[1].at == utc(2026, 12, 24, 11) and entries[1].audience.everyone
    assert entries[2].audience.lifecycle == ("active", "new") and entries[2].paused


def test_every_problem_of_a_file_is_listed_with_its_entry(context: CalendarContext) -> None:
    bad = textwrap.dedent("""\
        [[entries]]
        id = "bad-cron"
        cron = "0 25 * * *"
        channel = "oa"
        template = "calendar/new_season.txt.j2"
        audience = { everyone = true }

        [[entries]]
        id = "both"
        cron = "0 10 * * *"
        at = "2026-12-24 19:00"
        channel = "oa"
        template = "calendar/new_season.txt.j2"
        audience = { everyone = true }

        [[entries]]
        id = "neither"
        channel = "fax"
        template = "calendar/nope.txt.j2"
        audience = { everyone = true }

        [[entries]]
        id = "xmas"
        at = "2026-12-24 19:00"
        channel = "oa"
        template = "calendar/nickname.txt.j2"

        [[entries]]
        id = "layers"
        cron = "0 10 * * *"
        channel = "wecom_mass"
        template = "calendar/named.txt.j2"
        audience = { scheme = "valu", layers = ["super"], lifecycle = ["asleep"], colour = "red" }

        [[entries]]
        id = "layers2"
        cron = "0 10 * * *"
        channel = "kf"
        template = "calendar/new_season.txt.j2"
        audience = { layers = ["vip"], everyone = true }

        [[entries]]
        id = "xmas"
        cron = "0 10 * * *"
        channel = "oa"
        template = "calendar/named.txt.j2"
        audience = { everyone = false }
        """)
    entries, problems = parse_calendar(bad, "cal.toml", context)
    assert entries == []
    expected = [
        'cal.toml: entries[0] (id "bad-cron"): cron: not a valid cron line',
        'cal.toml: entries[1] (id "both"): say when with either cron',
        'cal.toml: entries[2] (id "neither"): say when with either cron',
        'cal.toml: entries[2] (id "neither"): channel: unknown channel "fax" (one of: wecom_mass, wecom_group_mass, wecom_moments, kf, oa, staff_task)',
        "cal.toml: entries[2] (id \"neither\"): template: template 'calendar/nope.txt.j2' not found",
        "cal.toml: entries[3] (id \"xmas\"): template: template 'calendar/nickname.txt.j2': 'dict object' has no attribute 'nickname'",
        f'cal.toml: entries[3] (id "xmas"): {EMPTY_AUDIENCE}',
        'cal.toml: entries[4] (id "layers"): audience.colour: unknown key',
        'cal.toml: entries[4] (id "layers"): audience.scheme: unknown scheme "valu" (configured: value, lifecycle, evolution)',
        'cal.toml: entries[4] (id "layers"): audience.lifecycle: unknown layer "asleep" in scheme "lifecycle"',
        'cal.toml: entries[4] (id "layers"): template: prints member.name, but this channel sends one text',
        'cal.toml: entries[5] (id "layers2"): audience: everyone = true leaves no room for layers',
        'cal.toml: entries[5] (id "layers2"): audience.layers: unknown layer "vip" in scheme "value" (its layers: super, core, '
        'important, dormant, ordinary)',
        'cal.toml: entries[6] (id "xmas"): id used twice (also entries[3])',
        'cal.toml: entries[6] (id "xmas"): template: prints "None" for a member without a name',
        f'cal.toml: entries[6] (id "xmas"): {EMPTY_AUDIENCE}',
    ]
    for line in expected:
        assert any(p.startswith(line) for p in problems), (line, problems)
    assert len(problems) == len(expected), problems
    assert EMPTY_AUDIENCE == 'audience is empty: say who (e.g. layers = ["super"]) or write audience = { everyone = true }'


def test_a_file_that_is_not_a_calendar_says_so(context: CalendarContext) -> None:
    assert parse_calendar("[[entry]]\nid = 1\n", "c.toml", context)[1] == [
        "c.toml: entry: unknown key (a calendar file holds [[entries]] only)"]
    assert parse_calendar("entries = [", "c.toml", context)[1][0].startswith("c.toml: not valid TOML")
    assert parse_calendar("", "c.toml", context) == ([], [])  # an empty calendar is a calendar


def test_export_writes_what_reads_back_to_the_same_entries(context: CalendarContext) -> None:
    entries, _ = parse_calendar(GOOD, "cal.toml", context)
    text = calendar_toml(entries, SHANGHAI)
    again, problems = parse_calendar(text, "export.toml", context)
    assert problems == [] and sorted(again, key=lambda e: e.id) == sorted(entries, key=lambda e: e.id)
    assert calendar_toml(again, SHANGHAI) == text
    assert 'at = "2026-12-24 19:00"' in text and 'audience = { everyone = true }' in text


# ── Through the database ───────────────────────────────────────────────────────────────


async def seed(sessions: SessionFactory) -> dict[str, int]:
    """Six members across layers, stores, owners, tags and platforms (one left, one opted out)."""
    ids: dict[str, int] = {}
    async with sessions() as session, session.begin():
        jingan, xuhui = Store(code="jingan", name="静安店"), Store(code="xuhui", name="徐汇店")
        session.add_all([jingan, xuhui])
        await session.flush()
        zhang, li = Staff(userid="zhangsan", name="张三", store_id=jingan.id), Staff(userid="lisi", name="李四", store_id=xuhui.id)
        session.add_all([zhang, li])
        await session.flush()
        rows = [  # name, value layer, lifecycle, store, owner, wecom, oa, tags, opted out, left
            ("王芳", "super", "active", jingan, zhang, "wmAAAA01", "oA01", ["面包控"], False, False),
            ("李娜", "super", "new", xuhui, li, "wmBBBB02", "oB02", ["勿扰"], False, False),
            ("张敏", "ordinary", "dormant", jingan, zhang, "wmCCCC03", None, [], False, False),
            ("陈静", "ordinary", "active", jingan, zhang, "wmDDDD04", "oD04", [], True, False),
            ("刘洋", "core", "ordinary", None, None, None, "oE05", ["面包控"], False, False),
            ("赵丽", "super", "active", jingan, zhang, "wmFFFF06", None, [], False, True),
        ]
        for name, value, life, shop, owner, wecom, oa, tags, opted, left in rows:
            member = Member(name=name, store_id=shop.id if shop else None, owner_staff_id=owner.id if owner else None,
                            opted_out_at=NOW - timedelta(days=1) if opted else None,
                            left_at=NOW - timedelta(days=1) if left else None)
            session.add(member)
            await session.flush()
            assert member.id is not None
            ids[name] = member.id
            session.add_all([LayerAssignment(member_id=member.id, scheme="value", layer=value),
                             LayerAssignment(member_id=member.id, scheme="lifecycle", layer=life)])
            session.add_all([MemberIdentity(member_id=member.id, platform=p, external_id=e)
                             for p, e in (("wecom", wecom), ("oa", oa)) if e])
            for tag in tags:
                await apply_tag(session, member.id, await ensure_tag(session, tag), "staff", "zhangsan", NOW)
    return ids


async def audience_of(sessions: SessionFactory, **audience: Any) -> list[str]:
    async with sessions() as session:
        resolved = await audiences.resolve(session, Audience(**audience))
        page = await audiences.recipients(session, resolved, "oa", 0, 100)
        names = {m.id: m.name for m in (await session.execute(select(Member))).scalars()}
    return [str(names[r.member_id]) for r in page]


async def test_audiences_are_selected_by_layers_tags_stores_and_life_cycle(sessions: SessionFactory) -> None:
    await seed(sessions)
    assert await audience_of(sessions, layers=("super",)) == ["王芳", "李娜"]  # 赵丽 left
    assert await audience_of(sessions, layers=("super",), exclude_tags=("勿扰",)) == ["王芳"]
    assert await audience_of(sessions, tags=("面包控",)) == ["王芳", "刘洋"]
    assert await audience_of(sessions, stores=("jingan",)) == ["王芳", "张敏", "陈静"]
    assert await audience_of(sessions, lifecycle=("active",)) == ["王芳", "陈静"]
    assert await audience_of(sessions, layers=("super", "ordinary"), stores=("jingan",), lifecycle=("active",)) == [
        "王芳", "陈静"]
    assert await audience_of(sessions, everyone=True, exclude_tags=("面包控", "勿扰")) == ["张敏", "陈静"]
    assert await audience_of(sessions, tags=("no such tag",)) == []
    assert await audience_of(sessions, stores=("nowhere",)) == []


async def add_entry(sessions: SessionFactory, spec: EntrySpec) -> None:
    async with sessions() as session, session.begin():
        session.add(spec.row())


async def outbox(sessions: SessionFactory) -> list[OutboxEntry]:
    async with sessions() as session:
        return list((await session.execute(select(OutboxEntry).order_by(OutboxEntry.id))).scalars())


OPTIONS = CalendarOptions(PERSONA)


async def test_an_official_account_entry_queues_one_row_per_member_in_her_words(sessions: SessionFactory) -> None:
    ids = await seed(sessions)
    await add_entry(sessions, EntrySpec("new-season", "calendar/new_season.txt.j2", "oa", Audience(everyone=True), "0 10 * * fri"))
    report = await run_calendar(sessions, OPTIONS, Renderer(), SHANGHAI, NOW)  # first scan: since a minute ago
    (fired,) = report.fired
    assert fired.skipped == {"no_oa_id": 1, "opted_out": 1} and fired.members == 3
    rows = await outbox(sessions)
    assert [(r.recipient, r.member_id, r.kind, r.route) for r in rows] == [
        ("oA01", ids["王芳"], "marketing", "message"), ("oB02", ids["李娜"], "marketing", "message"),
        ("oE05", ids["刘洋"], "marketing", "message")]
    assert rows[0].dedupe_key == f"cal:new-season:20261204T1000:m{ids['王芳']}"
    assert rows[0].body.startswith("王芳，换季啦，我是小禾") and "静安店" in rows[0].body
    assert rows[2].body.startswith("刘洋，换季啦") and "这几天店里" in rows[2].body  # no store: no store name


async def test_a_rerun_of_the_same_window_enqueues_nothing_new(sessions: SessionFactory) -> None:
    await seed(sessions)
    await add_entry(sessions, EntrySpec("weekly", "calendar/new_season.txt.j2", "oa", Audience(everyone=True), "0 10 * * fri"))
    since = NOW - timedelta(minutes=1)
    await run_calendar(sessions, OPTIONS, Renderer(), SHANGHAI, NOW, since)
    first = [r.dedupe_key for r in await outbox(sessions)]
    # The same window again (a crash before the cursor moved, a second scheduler…).
    report = await run_calendar(sessions, OPTIONS, Renderer(), SHANGHAI, NOW, since)
    assert len(report.fired) == 1 and [r.dedupe_key for r in await outbox(sessions)] == first
    async with sessions() as session:
        assert await load_cursor(session, CURSOR) == NOW.isoformat()
    # The next scan starts at the cursor: nothing is due.
    assert (await run_calendar(sessions, OPTIONS, Renderer(), SHANGHAI, NOW + timedelta(minutes=1))).fired == []


async def test_catch_up_after_downtime_happens_once(sessions: SessionFactory) -> None:
    await seed(sessions)
    await add_entry(sessions, EntrySpec("hourly", "calendar/new_season.txt.j2", "oa", Audience(layers=("core",)), "0 * * * *"))
    await run_calendar(sessions, OPTIONS, Renderer(), SHANGHAI, NOW - timedelta(hours=5, minutes=30))  # then down
    report = await run_calendar(sessions, OPTIONS, Renderer(), SHANGHAI, NOW)
    assert [(f.entry, f.at) for f in report.fired] == [("hourly", utc(2026, 12, 4, 2))] and report.let_go == 5
    again = await run_calendar(sessions, OPTIONS, Renderer(), SHANGHAI, NOW + timedelta(seconds=20))
    assert again.fired == []
    assert [r.dedupe_key.split(":")[2] for r in await outbox(sessions)] == ["20261204T1000"]


async def test_a_paused_entry_fires_nothing_and_once_resumed_only_what_falls_due_after(
    sessions: SessionFactory, context: CalendarContext
) -> None:
    await seed(sessions)
    await add_entry(sessions, EntrySpec("hourly", "calendar/new_season.txt.j2", "oa", Audience(layers=("core",)), "0 * * * *"))
    catch_all = CalendarOptions(PERSONA, catch_up_max=10)
    start = NOW - timedelta(hours=6)  # 04:00:30 in Shanghai
    assert [f.at for f in (await run_calendar(sessions, catch_all, Renderer(), SHANGHAI, start)).fired] == [
        utc(2026, 12, 3, 20)]
    assert await set_paused(sessions, "hourly", True, start + timedelta(minutes=1)) is True
    assert await set_paused(sessions, "hourly", True, start + timedelta(minutes=2)) is False  # already
    assert await set_paused(sessions, "nothing", True, start) is None
    assert (await run_calendar(sessions, catch_all, Renderer(), SHANGHAI, start + timedelta(hours=2))).fired == []
    # Down after 06:00:30 (Shanghai); resumed at 07:30:30; back at 10:00:30: 08:00, 09:00
    # and 10:00 fire, not 07:00, which fell due while the entry was paused.
    assert await set_paused(sessions, "hourly", False, NOW - timedelta(hours=2, minutes=30)) is True
    report = await run_calendar(sessions, catch_all, Renderer(), SHANGHAI, NOW)
    assert [f.at for f in report.fired] == [utc(2026, 12, 4, 0), utc(2026, 12, 4, 1), utc(2026, 12, 4, 2)]
    assert len(await outbox(sessions)) == 4  # 刘洋 (core) once an hour

    # Loading a file that no longer says `paused = true` resumes too.
    await load_calendar(sessions, GOOD, "cal.toml", context, NOW)
    later = NOW + timedelta(hours=1)
    changes, _ = await load_calendar(sessions, GOOD.replace("paused = true\n", ""), "cal.toml", context, later)
    assert changes is not None and changes.changed == ["moments"]
    (moments,) = [e for e in await calendar_entries(sessions) if e.id == "moments"]
    assert not moments.paused and moments.resumed_at == later
    assert calendar_toml([moments], SHANGHAI).count("paused") == 0


async def test_a_mass_send_goes_per_owner_with_a_prompt_to_confirm_it(sessions: SessionFactory) -> None:
    await seed(sessions)
    await add_entry(sessions, EntrySpec("new-season", "calendar/new_season.txt.j2", "wecom_mass",
                                        Audience(layers=("super", "ordinary", "core")), "0 10 * * fri", title="新品季"))
    (fired,) = (await run_calendar(sessions, OPTIONS, Renderer(), SHANGHAI, NOW)).fired
    assert fired.skipped == {"opted_out": 1, "no_owner": 1} and fired.members == 3
    rows = {r.dedupe_key: r for r in await outbox(sessions)}
    mass, prompt = rows["cal:new-season:20261204T1000:s:zhangsan"], rows["cal:new-season:20261204T1000:s:zhangsan:prompt"]
    assert (mass.route, mass.kind, mass.recipient, mass.member_id) == ("mass_send", "marketing", "zhangsan", None)
    assert json.loads(mass.meta) == {"chat_type": "single", "external_userid": ["wmAAAA01", "wmCCCC03"], "entry": "new-season"}
    assert mass.body.startswith("换季啦") and "静安店" in mass.body  # one text: no member's name, her store
    assert (prompt.route, prompt.kind) == ("message", "staff_prompt") and "「新品季」" in prompt.body and "2 位客户" in prompt.body
    assert json.loads(rows["cal:new-season:20261204T1000:s:lisi"].meta)["external_userid"] == ["wmBBBB02"]
    assert len(rows) == 4


async def test_a_customer_who_had_this_months_mass_sends_is_left_out_of_the_next(sessions: SessionFactory) -> None:
    await seed(sessions)
    for n in range(3):
        await add_entry(sessions, EntrySpec(f"post-{n}", "calendar/new_season.txt.j2", "wecom_mass",
                                            Audience(layers=("super", "ordinary", "core")), f"{n} 10 * * fri"))
    capped = CalendarOptions(PERSONA, wecom_mass_per_month=2)
    reports = [await run_calendar(sessions, capped, Renderer(), SHANGHAI, NOW + timedelta(minutes=n), since)
               for n, since in ((0, NOW - timedelta(minutes=1)), (1, NOW), (2, NOW + timedelta(minutes=1)))]
    assert [r.fired[0].skipped.get("wecom_monthly_cap", 0) for r in reports] == [0, 0, 3]
    rows = [r for r in await outbox(sessions) if r.route == "mass_send"]
    assert {r.dedupe_key.split(":")[1] for r in rows} == {"post-0", "post-1"}


async def test_a_group_mass_send_goes_to_the_groups_holding_the_audience(sessions: SessionFactory) -> None:
    ids = await seed(sessions)
    async with sessions() as session, session.begin():
        groups = [CustomerGroup(platform="wecom", chat_id=c, name=c, owner=o) for c, o in
                  (("wrSuper", "zhangsan"), ("wrOrdinary", "zhangsan"), ("wrLisi", "lisi"))]
        session.add_all(groups)
        await session.flush()
        for group, name in ((groups[0], "王芳"), (groups[1], "张敏"), (groups[2], "李娜")):
            session.add(GroupMembership(group_id=group.id, user_id=name, member_id=ids[name], joined_at=NOW))
    await add_entry(sessions, EntrySpec("g", "calendar/new_season.txt.j2", "wecom_group_mass",
                                        Audience(layers=("super",)), "0 10 * * fri"))
    (fired,) = (await run_calendar(sessions, OPTIONS, Renderer(), SHANGHAI, NOW)).fired
    rows = {r.dedupe_key: r for r in await outbox(sessions)}
    assert json.loads(rows["cal:g:20261204T1000:s:zhangsan"].meta) == {
        "chat_type": "group", "chat_id_list": ["wrSuper"], "entry": "g"}
    assert json.loads(rows["cal:g:20261204T1000:s:lisi"].meta)["chat_id_list"] == ["wrLisi"]
    assert "2 位客户" not in rows["cal:g:20261204T1000:s:lisi:prompt"].body and fired.members == 2


async def test_a_staff_task_entry_asks_each_owner_once(sessions: SessionFactory) -> None:
    await seed(sessions)
    await add_entry(sessions, EntrySpec("moments", "calendar/moments_post.txt.j2", "staff_task",
                                        Audience(everyone=True), "0 10 * * fri", title="周五朋友圈"))
    for _ in range(2):
        await run_calendar(sessions, OPTIONS, Renderer(), SHANGHAI, NOW, NOW - timedelta(minutes=1))
    async with sessions() as session:
        tasks = (await session.execute(select(StaffTask).order_by(StaffTask.dedupe_key))).scalars().all()
    assert [(t.dedupe_key, t.kind, t.due_date) for t in tasks] == [
        ("cal:moments:20261204T1000:s:lisi", "moments_post", date(2026, 12, 4)),
        ("cal:moments:20261204T1000:s:zhangsan", "moments_post", date(2026, 12, 4))]
    assert tasks[1].title == "发朋友圈/客户群：周五朋友圈" and "静安店" in tasks[1].body


async def test_customer_service_reaches_only_members_with_a_conversation(sessions: SessionFactory) -> None:
    ids = await seed(sessions)
    async with sessions() as session, session.begin():
        for key, sender, hours in (("k1", "wmAAAA01", 1), ("k2", "wmBBBB02", 72)):  # 李娜 wrote three days ago
            session.add(InboxEntry(key=key, platform="wecom", sender=sender, status="done",
                                   received_at=NOW - timedelta(hours=hours), payload=json.dumps(
                {"type": "message", "conversation": "kf:wkOPEN", "text": "在吗"}, separators=(",", ":"))))
    await add_entry(sessions, EntrySpec("kf", "calendar/new_season.txt.j2", "kf", Audience(layers=("super",)), "0 10 * * fri"))
    (fired,) = (await run_calendar(sessions, OPTIONS, Renderer(), SHANGHAI, NOW)).fired
    (row,) = await outbox(sessions)
    assert (row.platform, row.recipient, row.member_id) == ("wecom", "wmAAAA01", ids["王芳"])
    assert json.loads(row.meta) == {"entry": "kf", "conversation": "kf:wkOPEN"}
    assert fired.skipped == {"no_kf_conversation": 1}


async def entries_now(sessions: SessionFactory) -> list[tuple[str, str | None, str]]:
    return [(e.id, e.cron, e.audience.to_json()) for e in await calendar_entries(sessions)]


async def test_a_bad_file_is_rejected_whole_and_the_running_calendar_kept(
    sessions: SessionFactory, context: CalendarContext
) -> None:
    await seed(sessions)
    changes, problems = await load_calendar(sessions, GOOD, "cal.toml", context, NOW)
    assert problems == [] and changes is not None and changes.added == ["new-season", "xmas", "moments"]
    before = await entries_now(sessions)
    broken = GOOD.replace('"0 10 * * fri"', '"0 10 * * someday"').replace('stores = ["jingan"]', 'stores = ["nowhere"]')
    broken += '\n[[entries]]\nid = "extra"\nat = "2026-12-25 10:00"\nchannel = "oa"\ntemplate = "calendar/new_season.txt.j2"\n'
    changes, problems = await load_calendar(sessions, broken, "cal.toml", context, NOW)
    assert changes is None
    assert [p.split(": ")[1] for p in problems] == ['entries[0] (id "new-season")', 'entries[3] (id "extra")']
    assert await entries_now(sessions) == before
    # Parsing passes, but a store code no store has: still nothing changes.
    unknown_store = GOOD.replace('stores = ["jingan"]', 'stores = ["nowhere"]')
    changes, problems = await load_calendar(sessions, unknown_store, "cal.toml", context, NOW)
    assert changes is None and problems == [
        'cal.toml: entries[2] (id "moments"): audience.stores: unknown store code "nowhere"']
    assert await entries_now(sessions) == before


async def test_load_replaces_the_calendar_and_keeps_what_did_not_change(
    sessions: SessionFactory, context: CalendarContext
) -> None:
    await seed(sessions)
    await load_calendar(sessions, GOOD, "cal.toml", context, NOW)
    exported = calendar_toml(await calendar_entries(sessions), SHANGHAI)
    changes, _ = await load_calendar(sessions, exported, "export.toml", context, NOW + timedelta(hours=1))
    assert changes is not None and (changes.added, changes.changed, changes.removed, changes.unchanged) == ([], [], [], 3)
    assert calendar_toml(await calendar_entries(sessions), SHANGHAI) == exported  # load(export) is identity
    async with sessions() as session:
        stamps = {e.id: e.updated_at for e in (await session.execute(select(CalendarEntry))).scalars()}
    assert set(stamps.values()) == {NOW}
    smaller = GOOD.split("[[entries]]\nid = \"moments\"")[0].replace('"新品季"', '"新品季 2"')
    changes, _ = await load_calendar(sessions, smaller, "cal.toml", context, NOW)
    assert changes is not None and (changes.changed, changes.removed, changes.unchanged) == (["new-season"], ["moments"], 1)


async def test_the_preview_counts_per_layer_and_what_is_held_back_and_why(sessions: SessionFactory) -> None:
    await seed(sessions)
    everyone = Audience(everyone=True)
    ordinary = Audience(layers=("ordinary", "core"))
    entries = [
        EntrySpec("a-morning", "calendar/new_season.txt.j2", "oa", everyone, "0 10 * * *"),
        EntrySpec("b-noon", "calendar/new_season.txt.j2", "oa", ordinary, "0 12 * * *"),
        EntrySpec("c-night", "calendar/new_season.txt.j2", "oa", ordinary, at=utc(2026, 12, 1, 14, 0)),  # 22:00
        EntrySpec("d-paused", "calendar/new_season.txt.j2", "oa", everyone, "0 9 * * *", paused=True),
    ]
    policy = PreviewPolicy(SHANGHAI, QuietHours(), {"super": 4}, 2)
    preview = await preview_calendar(sessions, entries, Renderer(), PERSONA, policy, "value", date(2026, 12, 1), 2)
    got = [(o.entry.id, f"{o.at:%m-%d %H:%M}", o.audience, o.reached, o.by_layer, o.held, o.deferred)
           for o in preview.outcomes]
    assert got == [
        # Everyone not left: 5; 张敏 has no official-account id, 陈静 opted out.
        ("a-morning", "12-01 10:00", 5, 3, {"super": 2, "core": 1}, {"no_oa_id": 1, "opted_out": 1}, 0),
        ("b-noon", "12-01 12:00", 3, 1, {"core": 1}, {"no_oa_id": 1, "opted_out": 1}, 0),
        # 刘洋 (core: the default cap of 2) already has two this week.
        ("c-night", "12-01 22:00", 3, 0, {}, {"no_oa_id": 1, "opted_out": 1, "weekly_cap": 1}, 0),
        ("a-morning", "12-02 10:00", 5, 2, {"super": 2}, {"no_oa_id": 1, "opted_out": 1, "weekly_cap": 1}, 0),
        ("b-noon", "12-02 12:00", 3, 0, {}, {"no_oa_id": 1, "opted_out": 1, "weekly_cap": 1}, 0),
    ]
    assert preview.paused == ["d-paused"]
    assert preview.samples["a-morning"].startswith("王芳，换季啦") and "静安店" in preview.samples["a-morning"]
    # Quiet hours: at 22:00 a message waits for the morning, and still counts toward the cap.
    late = [EntrySpec("late", "calendar/new_season.txt.j2", "oa", Audience(layers=("super",)), at=utc(2026, 12, 1, 14, 0))]
    (outcome,) = (await preview_calendar(sessions, late, Renderer(), PERSONA, policy, "value", date(2026, 12, 1), 1)).outcomes
    assert (outcome.reached, outcome.deferred, f"{outcome.deferred_until:%m-%d %H:%M}") == (2, 2, "12-02 08:30")


# ── The commands ───────────────────────────────────────────────────────────────────────


def _count(settings: Settings, model: type) -> int:
    async def run() -> int:
        engine = create_database_engine(settings.storage.url)
        try:
            async with session_factory(engine)() as session:
                return int((await session.execute(select(func.count()).select_from(model))).scalar_one())
        finally:
            await engine.dispose()
    return asyncio.run(run())


def test_the_commands_load_export_and_preview(settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def seeded() -> None:
        engine = create_database_engine(settings.storage.url)
        await seed(session_factory(engine))
        await engine.dispose()

    asyncio.run(seeded())
    good = tmp_path / "cal.toml"
    good.write_text(GOOD, encoding="utf-8")
    assert calendar_cli.load(settings, str(good)) == 0
    assert "3 entries — added 3 (new-season, xmas, moments)" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace('channel = "oa"', 'channel = "sms"'), encoding="utf-8")
    assert calendar_cli.load(settings, str(bad)) == 1
    err = capsys.readouterr().err
    assert f'{bad}: entries[1] (id "xmas"): channel: unknown channel "sms"' in err and "calendar is unchanged" in err
    assert _count(settings, CalendarEntry) == 3

    assert calendar_cli.export(settings, None) == 0
    exported = capsys.readouterr().out
    assert exported == calendar_toml(parse_calendar(GOOD, "x", calendar_context(settings))[0], SHANGHAI)
    out = tmp_path / "out.toml"
    assert calendar_cli.export(settings, str(out)) == 0 and out.read_text(encoding="utf-8") == exported
    assert "wrote 3 calendar entries" in capsys.readouterr().out

    assert calendar_cli.preview(settings, date(2026, 12, 4), 1, True) == 0
    report = json.loads(capsys.readouterr().out)
    (day,) = report["schedule"]
    (fired,) = day["entries"]  # Friday: the new season; xmas is later, moments paused
    assert (fired["id"], fired["time"], fired["reached"], fired["by_layer"]) == ("new-season", "10:00", 1, {"super": 1})
    assert fired["held"] == {"no_wecom_id": 1} and report["paused"] == ["moments"]  # 刘洋; 李娜 is excluded
    assert report["samples"]["new-season"].startswith("换季啦")
    assert calendar_cli.preview(settings, date(2026, 12, 24), 1, False) == 0
    assert "xmas" in capsys.readouterr().out


def test_check_reads_the_calendar_file_named_in_the_settings(settings: Settings, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(GOOD, encoding="utf-8")
    bad.write_text(GOOD.replace('cron = "0 10 * * fri"', 'cron = "0 10 * * funday"'), encoding="utf-8")
    assert calendar_cli.calendar_file_problems(settings, good) == []
    (problem,) = calendar_cli.calendar_file_problems(settings, bad)
    assert problem.startswith(f'{bad}: entries[0] (id "new-season"): cron: not a valid cron line')
    assert calendar_cli.calendar_file_problems(settings, tmp_path / "none.toml") == [
        f"{tmp_path / 'none.toml'}: no such file (named by calendar.file)"]


def test_check_looks_at_a_moments_entrys_image_files(settings: Settings, tmp_path: Path) -> None:
    calendar = tmp_path / "moments.toml"
    calendar.write_text('[[entries]]\nid = "spring"\nat = "2030-03-01 10:00"\nchannel = "wecom_moments"\n'
                        'template = "calendar/moments_post.txt.j2"\naudience = { everyone = true }\n'
                        'images = ["spring/1.jpg"]\n', encoding="utf-8")
    (problem,) = calendar_cli.calendar_file_problems(settings, calendar)
    assert problem == f'{calendar}: entry "spring": images: "spring/1.jpg": no such file in {settings.calendar.media_dir}'


def test_check_looks_at_a_mass_sends_attachment_files_and_a_file_round_trips_them(
    settings: Settings, tmp_path: Path
) -> None:
    calendar = tmp_path / "mass.toml"
    calendar.write_text('[[entries]]\nid = "winter"\nat = "2030-12-01 10:00"\nchannel = "wecom_mass"\n'
                        'template = "calendar/new_season.txt.j2"\naudience = { everyone = true }\n'
                        'attachments = { link = { title = "冬季新品", url = "https://brand.example/w" }, '
                        'images = ["winter/1.jpg"], miniprogram = { appid = "wx1234567890abcdef", '
                        'page = "pages/index.html", title = "菜单", cover = "winter/menu.jpg" } }\n', encoding="utf-8")
    media = settings.calendar.media_dir
    assert calendar_cli.calendar_file_problems(settings, calendar) == [
        f'{calendar}: entry "winter": attachments.images: "winter/1.jpg": no such file in {media}',
        f'{calendar}: entry "winter": attachments.miniprogram.cover: "winter/menu.jpg": no such file in {media}']
    entries, problems = parse_calendar(calendar.read_text(encoding="utf-8"), "mass.toml", calendar_context(settings))
    assert problems == [] and entries[0].mass.link is not None and entries[0].mass.images == ("winter/1.jpg",)
    again, problems = parse_calendar(calendar_toml(entries, settings.zone), "again.toml", calendar_context(settings))
    assert problems == [] and again == entries  # `siyu calendar export` writes them back as they were


async def test_an_entry_with_a_holdout_sends_to_the_rest_and_records_who_was_held_out(sessions: SessionFactory) -> None:
    """holdout = 0.5 on the official-account entry (3 reachable members): the held out get
    no row and are recorded as held out of this occurrence; the global control group
    (everyone, at share 0.2 drawn stably) never gets calendar marketing."""
    from dataclasses import replace

    from scheduler.holdout import held_out, in_global_control
    from storage.outcome_models import OutcomeTouch

    ids = await seed(sessions)
    entry = EntrySpec("new-season", "calendar/new_season.txt.j2", "oa", Audience(everyone=True), "0 10 * * fri",
                      holdout=0.5)
    await add_entry(sessions, entry)
    (fired,) = (await run_calendar(sessions, OPTIONS, Renderer(), SHANGHAI, NOW)).fired
    reachable = {ids["王芳"], ids["李娜"], ids["刘洋"]}
    key = "cal:new-season:20261204T1000"
    expected = {m for m in reachable if held_out(m, "entry:new-season", key, 0.5)}
    sent = {r.member_id for r in await outbox(sessions)}
    async with sessions() as session:
        touches = (await session.execute(select(OutcomeTouch))).scalars().all()
    assert {t.member_id for t in touches} == expected and sent == reachable - expected
    assert fired.held_out == len(expected) and fired.members == len(reachable - expected)
    assert all(t.held_out and (t.source_kind, t.source_ref) == ("entry", "new-season") for t in touches)
    assert EntrySpec.of(entry.row()).holdout == 0.5  # kept in the database
    control = {m for m in ids.values() if in_global_control(m, 0.9)}
    gated = replace(OPTIONS, global_control=0.9)
    await add_entry(sessions, EntrySpec("winter", "calendar/new_season.txt.j2", "oa", Audience(everyone=True),
                                        "0 10 * * fri"))
    await run_calendar(sessions, gated, Renderer(), SHANGHAI, NOW + timedelta(seconds=1), NOW - timedelta(minutes=1))
    winter = {r.member_id for r in await outbox(sessions) if r.dedupe_key.startswith("cal:winter:")}
    assert winter == reachable - control


def test_a_holdout_outside_0_to_half_is_refused_in_a_calendar_file(context: CalendarContext) -> None:
    from scheduler.calendar import parse_entry

    item = {"id": "x", "cron": "0 10 * * fri", "channel": "oa", "template": "calendar/new_season.txt.j2",
            "audience": {"everyone": True}}
    spec, problems = parse_entry(item | {"holdout": 0.1}, context)
    assert problems == [] and spec is not None and spec.holdout == 0.1
    for bad in (0.9, -0.1, "ten", True):
        _, problems = parse_entry(item | {"holdout": bad}, context)
        assert any(p.startswith("holdout:") for p in problems), bad
