"""Care: birthdays (solar, lunar, 29 February, leap months, day 30), anniversaries,
festivals and win-back found on the right days; per layer a message or a task for a
person; once per member per occasion per year, whatever reruns and restarts — in the pure
date logic and through the database on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, func, select, text

from bot.cli.care import care_run
from bot.settings.care import CareLayerSettings, CareSettings
from bot.settings.care_plan import care_plan, care_problems
from bot.settings.model import Settings
from content_templates.renderer import Renderer, RenderError
from handlers.care_dates import lunar_birthday, next_birthday, solar_birthday
from scheduler.care import CarePlan, CareRule, occurrences, run_care_scan
from scheduler.festivals import Festival, birthday_keys, festivals_on
from storage.engine import SessionFactory, create_database_engine, session_factory
from storage.models import (
    Interaction,
    LayerAssignment,
    Member,
    MemberIdentity,
    Order,
    OutboxEntry,
    Staff,
    StaffTask,
    Store,
)

ZONE = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 11, 23)  # lunar 2026-10-15
NOW = datetime(2026, 11, 22, 22, 5, tzinfo=timezone.utc)  # 06:05 on the 23rd in Shanghai
FESTIVALS = (Festival("中秋", "lunar", 8, 15), Festival("妇女节", "solar", 3, 8), Festival("春节", "lunar", 1, 1))
PERSONA = {"name": "小禾", "title": "", "signature": "小禾 · 禾麦烘焙", "default_line": "", "tips": {}}
PLAN = CarePlan(scheme="value", top_layer="super", festivals=FESTIVALS, persona=PERSONA)


# ── Pure: which days ────────────────────────────────────────────────────────────────────

DAYS = [date(2026, 1, 1) + timedelta(days=n) for n in range((date(2029, 12, 31) - date(2026, 1, 1)).days + 1)]


def test_every_lunar_birthday_is_found_on_the_day_next_birthday_gives_2026_to_2029() -> None:
    keys = {day: birthday_keys(day) for day in DAYS}
    birthdays = [(m, d, leap) for m in range(1, 13) for d in range(1, 31) for leap in (False, True)]
    expected = {(lunar_birthday(y, m, d, leap), (m, d, leap)) for m, d, leap in birthdays for y in range(2025, 2030)}
    expected = {(day, b) for day, b in expected if DAYS[0] <= day <= DAYS[-1]}
    found = {(day, (m, d, leap)) for day, k in keys.items() for m, d, leap in birthdays
             if m * 100 + d in (k.lunar_leap if leap else k.lunar)}
    assert found == expected
    # Each birthday once a lunar year: about four times in four solar years, never twice a day.
    assert all(3 <= sum(1 for _, b in found if b == birthday) <= 5 for birthday in birthdays)


def test_every_solar_birthday_is_found_once_a_year_and_29_february_on_28_in_common_years() -> None:
    found = {(day, md) for day in DAYS for md in birthday_keys(day).solar}
    assert found == {(solar_birthday(y, md // 100, md % 100), md) for y in range(2026, 2030)
                     for md in {day.month * 100 + day.day for day in DAYS}}
    assert 229 in birthday_keys(date(2026, 2, 28)).solar and 229 in birthday_keys(date(2027, 2, 28)).solar
    assert 229 not in birthday_keys(date(2028, 2, 28)).solar and 229 in birthday_keys(date(2028, 2, 29)).solar


def test_leap_month_and_day_30_birthdays() -> None:
    # 2025 has a leap sixth month (闰六月): a 闰六月初十 birthday falls in it, an ordinary
    # 六月初十 birthday does not; in 2026 (no leap sixth month) both fall on 六月初十.
    leap_day = lunar_birthday(2025, 6, 10, leap=True)
    assert leap_day == date(2025, 8, 3) and lunar_birthday(2025, 6, 10) == date(2025, 7, 4)
    assert 610 in birthday_keys(leap_day).lunar_leap and 610 not in birthday_keys(leap_day).lunar
    assert 610 in birthday_keys(date(2025, 7, 4)).lunar and 610 not in birthday_keys(date(2025, 7, 4)).lunar_leap
    ordinary_2026 = lunar_birthday(2026, 6, 10)
    assert {610} <= birthday_keys(ordinary_2026).lunar & birthday_keys(ordinary_2026).lunar_leap
    # The twelfth month of lunar 2025 has 29 days: a 腊月三十 birthday falls on 腊月廿九.
    assert lunar_birthday(2025, 12, 30) == date(2026, 2, 16) == lunar_birthday(2025, 12, 29)
    assert {1229, 1230} <= birthday_keys(date(2026, 2, 16)).lunar
    assert next_birthday(12, 30, "lunar", False, date(2026, 2, 1)) == date(2026, 2, 16)


def test_festivals_on_their_solar_and_lunar_days() -> None:
    def on(day: date) -> list[str]:
        return [f.name for f in festivals_on(FESTIVALS, day)]

    assert [d for d in DAYS if "中秋" in on(d)] == [date(2026, 9, 25), date(2027, 9, 15), date(2028, 10, 3),
                                                    date(2029, 9, 22)]
    assert [d for d in DAYS if "春节" in on(d)] == [date(2026, 2, 17), date(2027, 2, 6), date(2028, 1, 26),
                                                    date(2029, 2, 13)]
    assert [d for d in DAYS if "妇女节" in on(d)] == [date(y, 3, 8) for y in range(2026, 2030)]
    assert on(date(2026, 10, 18)) == [] and festivals_on((Festival("重阳", "lunar", 9, 9),), date(2026, 10, 18))


def test_the_audience_of_each_action_follows_the_layer_rules() -> None:
    assert PLAN.audience("birthday", "task").include == ("super",)
    assert PLAN.audience("birthday", "message").exclude == ("super",)
    assert PLAN.audience("festival-中秋", "message") is None  # nothing on festivals unless configured
    plan = CarePlan(scheme="value", top_layer="super", rules={"core": CareRule(message=True, occasions=frozenset({"festival"}))})
    assert plan.audience("festival-中秋", "message").include == ("core",)


# ── Through the database ────────────────────────────────────────────────────────────────


class Seed:
    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions
        self.clock = NOW - timedelta(days=400)

    async def member(
        self, name: str, *, birthday: tuple[int, int] | None = None, calendar: str = "solar", leap: bool = False,
        since: date | None = date(2024, 5, 5), layer: str | None = "ordinary", identities: tuple[str, ...] = ("sandbox",),
        left: bool = False, opted_out: bool = False, owner: int | None = None,
    ) -> int:
        async with self.sessions() as session, session.begin():
            store = (await session.execute(select(Store).where(Store.code == "jingan"))).scalars().first()
            if store is None:
                store = Store(code="jingan", name="静安店")
                session.add(store)
                await session.flush()
            m, d = birthday or (None, None)
            member = Member(
                name=name, birth_month=m, birth_day=d, birth_md=m * 100 + d if m and d else None,
                birthday_calendar=calendar, birthday_leap_month=leap, member_since=since, store_id=store.id,
                owner_staff_id=owner, left_at=NOW - timedelta(days=3) if left else None,
                opted_out_at=NOW - timedelta(days=3) if opted_out else None,
                created_at=NOW - timedelta(days=400), updated_at=NOW - timedelta(days=400),
            )
            session.add(member)
            await session.flush()
            assert member.id is not None
            for platform in identities:
                self.clock += timedelta(minutes=1)
                session.add(MemberIdentity(member_id=member.id, platform=platform, external_id=f"{platform}-{name}",
                                           created_at=self.clock))
            if layer:
                session.add(LayerAssignment(member_id=member.id, scheme="value", layer=layer))
            return member.id

    async def staff(self, userid: str) -> int:
        async with self.sessions() as session, session.begin():
            staff = Staff(userid=userid, name=userid)
            session.add(staff)
            await session.flush()
            assert staff.id is not None
            return staff.id

    async def activity(self, member_id: int, days_ago: float, kind: str = "message_in", order: bool = False) -> None:
        async with self.sessions() as session, session.begin():
            at = NOW - timedelta(days=days_ago)
            if order:
                session.add(Order(order_no=f"o-{member_id}-{days_ago}", member_id=member_id, amount_cents=100, ordered_at=at))
            else:
                session.add(Interaction(member_id=member_id, kind=kind, platform="sandbox", at=at))


async def outbox(sessions: SessionFactory) -> dict[str, OutboxEntry]:
    async with sessions() as session:
        return {r.dedupe_key: r for r in (await session.execute(select(OutboxEntry))).scalars()}


async def tasks(sessions: SessionFactory) -> dict[str, StaffTask]:
    async with sessions() as session:
        return {t.dedupe_key: t for t in (await session.execute(select(StaffTask))).scalars()}


async def scan(sessions: SessionFactory, plan: CarePlan = PLAN, day: date = TODAY, dry_run: bool = False):  # noqa: ANN201
    return await run_care_scan(sessions, plan, Renderer(), ZONE, NOW, day=day, dry_run=dry_run)


async def test_a_day_of_care_by_layer_and_reach(sessions: SessionFactory) -> None:
    seed = Seed(sessions)
    owner = await seed.staff("zhangsan")
    ids = {
        "solar": await seed.member("小美", birthday=(11, 23)),
        "lunar": await seed.member("阿兰", birthday=(10, 15), calendar="lunar", identities=("wecom", "oa")),
        "wecom": await seed.member("企微", birthday=(11, 23), identities=("wecom",), owner=owner),
        "top": await seed.member("超级", birthday=(11, 23), layer="super", owner=owner),
        "top_soon": await seed.member("快了", birthday=(11, 26), layer="super", owner=owner),
        "top_later": await seed.member("还早", birthday=(11, 27), layer="super"),
        "left": await seed.member("走了", birthday=(11, 23), left=True),
        "opted_out": await seed.member("退订", birthday=(11, 23), opted_out=True),
        "nowhere": await seed.member("无门", birthday=(11, 23), identities=()),
        "no_layer": await seed.member("无层", birthday=(11, 23), layer=None, identities=("oa", "sandbox")),
        "other_day": await seed.member("改天", birthday=(11, 24)),
    }
    report = await scan(sessions)
    assert dict(report.counts["birthday"]) == {"message": 4, "task_for_message": 1, "task": 2}
    assert report.unreachable == 1 and report.already == 0
    sent = await outbox(sessions)
    assert sorted(sent) == sorted(f"care:birthday:{y}:{ids[k]}" for k, y in
                                  (("solar", 2026), ("lunar", 2026), ("opted_out", 2026), ("no_layer", 2026)))
    row = sent[f"care:birthday:2026:{ids['lunar']}"]
    assert (row.platform, row.recipient, row.kind, row.route) == ("oa", "oa-阿兰", "care", "message")
    assert "农历生日" in row.body and "阿兰" in row.body and "小禾 · 禾麦烘焙" in row.body
    assert sent[f"care:birthday:2026:{ids['no_layer']}"].platform == "sandbox"  # her most recent direct identity
    # On the day at 10:00 in Shanghai.
    assert row.not_before.replace(tzinfo=timezone.utc) == datetime.combine(TODAY, time(10), ZONE)
    made = await tasks(sessions)
    assert sorted(made) == sorted([f"care-task:birthday:2026:{ids['top']}", f"care-task:birthday:2026:{ids['top_soon']}",
                                   f"care-task:birthday:2026:{ids['wecom']}"])
    gift = made[f"care-task:birthday:2026:{ids['top']}"]
    assert gift.staff_id == owner and gift.due_date == TODAY and gift.kind == "care"
    assert "送上一束花或一个蛋糕" in gift.body and "不附带任何条件" in gift.body and "参考话术" in gift.body
    assert made[f"care-task:birthday:2026:{ids['top_soon']}"].due_date == date(2026, 11, 26)  # three days ahead
    words = made[f"care-task:birthday:2026:{ids['wecom']}"]
    assert "亲自给企微发一句问候" in words.body and "花" not in words.body.split("参考话术")[0]
    assert not any(str(ids[k]) in key.rsplit(":", 1)[1] for key in [*sent, *made] for k in ("left", "other_day"))


async def test_reruns_and_restarts_enqueue_nothing_twice(db_url: str, sessions: SessionFactory) -> None:
    seed = Seed(sessions)
    await seed.member("小美", birthday=(11, 23))
    await seed.member("超级", birthday=(11, 24), since=date(2020, 11, 25), layer="super")
    first = await scan(sessions)
    assert first.total == 3  # her message; the top member's birthday and anniversary tasks
    before = (len(await outbox(sessions)), len(await tasks(sessions)))
    again = await scan(sessions)
    assert again.total == 0 and again.already == 3
    # A restart: a new engine, the next day's run and a rerun of today.
    engine = create_database_engine(db_url)
    try:
        fresh = session_factory(engine)
        assert (await scan(fresh)).total == 0
        assert (await scan(fresh, day=TODAY + timedelta(days=1))).total == 0  # its tasks were made three days ahead
    finally:
        await engine.dispose()
    assert (len(await outbox(sessions)), len(await tasks(sessions))) == before == (1, 2)


async def test_a_dry_run_writes_nothing_and_says_what_a_run_would_do(sessions: SessionFactory) -> None:
    seed = Seed(sessions)
    await seed.member("小美", birthday=(11, 23))
    await seed.member("超级", birthday=(11, 23), layer="super")
    dry = await scan(sessions, dry_run=True)
    assert (await outbox(sessions), await tasks(sessions)) == ({}, {})
    real = await scan(sessions)
    assert dry.counts == real.counts and real.total == 2 and dry.samples[0]["body"]


async def test_a_template_that_fails_stops_the_scan_with_nothing_written(sessions: SessionFactory) -> None:
    """A batch failing to render stops the scan: nothing written, the statement under way
    ended and the connection free — the next run does the day."""
    seed = Seed(sessions)
    await seed.member("小美", birthday=(11, 23))
    await seed.member("超级", birthday=(11, 24), layer="super")
    await seed.member("阿兰", birthday=(11, 23), identities=("wecom",))
    broken = Renderer(texts={"care/staff_gift.txt.j2": "{{ gift_card_number }}"})
    with pytest.raises(RenderError, match="gift_card_number"):
        await run_care_scan(sessions, PLAN, broken, ZONE, NOW, day=TODAY)
    assert (await outbox(sessions), await tasks(sessions)) == ({}, {})
    report = await asyncio.wait_for(scan(sessions), 30)
    assert dict(report.counts["birthday"]) == {"message": 1, "task": 1, "task_for_message": 1}


async def test_a_plan_that_asks_for_no_occasion_runs_and_enqueues_nothing(sessions: SessionFactory) -> None:
    """Every layer's care switched off (a brand that keeps only six moments, say): the
    scan has no question to ask and still completes."""
    await Seed(sessions).member("小美", birthday=(11, 23), layer="super")
    nothing = CareRule()
    report = await scan(sessions, CarePlan(scheme="value", top_layer="super", persona=PERSONA, top_rule=nothing,
                                           other_rule=nothing))
    assert (report.total, report.already) == (0, 0)
    assert (await outbox(sessions), await tasks(sessions)) == ({}, {})


async def test_lunar_leap_and_29_february_birthdays_on_their_days_2026_to_2029(sessions: SessionFactory) -> None:
    seed = Seed(sessions)
    birthdays = {
        await seed.member("闰五月三十", birthday=(5, 30), calendar="lunar", leap=True): (5, 30, "lunar", True),
        await seed.member("腊月三十", birthday=(12, 30), calendar="lunar"): (12, 30, "lunar", False),
        await seed.member("八月十五", birthday=(8, 15), calendar="lunar"): (8, 15, "lunar", False),
        await seed.member("二月廿九", birthday=(2, 29)): (2, 29, "solar", False),
    }
    plan = CarePlan(scheme="value", top_layer="super", task_days_ahead=0)
    days = sorted({when + timedelta(days=shift) for m, d, cal, leap in birthdays.values() for y in range(2026, 2030)
                   if (when := next_birthday(m, d, cal, leap, date(y, 1, 1))) for shift in (-1, 0, 1)})
    async with sessions() as session:
        for day in days:
            found = {o.member.id for o in await occurrences(session, plan, ZONE, day)}
            assert found == {i for i, (m, d, cal, leap) in birthdays.items()
                             if next_birthday(m, d, cal, leap, day) == day}, day
    # 2028 has a leap fifth month of 29 days: her birthday is its 29th, not the ordinary fifth month.
    assert next_birthday(5, 30, "lunar", True, date(2028, 1, 1)) == lunar_birthday(2028, 5, 29, leap=True)


async def test_anniversaries_for_the_top_layer_and_29_february_joiners(sessions: SessionFactory) -> None:
    seed = Seed(sessions)
    six_years = await seed.member("老友", since=date(2020, 11, 23), layer="super")
    ordinary = await seed.member("普通", since=date(2020, 11, 23))
    joined_today = await seed.member("新人", since=TODAY, layer="super")
    leap_joiner = await seed.member("闰日", since=date(2024, 2, 29), layer="super")
    report = await scan(sessions)
    made = await tasks(sessions)
    assert list(made) == [f"care-task:anniversary:2026:{six_years}"]
    assert "成为会员6周年" in made[f"care-task:anniversary:2026:{six_years}"].body
    assert dict(report.counts) == {"anniversary": {"task": 1}}
    await scan(sessions, day=date(2027, 2, 25))
    assert f"care-task:anniversary:2027:{leap_joiner}" in await tasks(sessions)  # due 2027-02-28
    assert (await tasks(sessions))[f"care-task:anniversary:2027:{leap_joiner}"].due_date == date(2027, 2, 28)
    plan = CarePlan(scheme="value", top_layer="super", persona=PERSONA,
                    other_rule=CareRule(message=True, occasions=frozenset({"anniversary"})))
    await scan(sessions, plan)
    assert list(await outbox(sessions)) == [f"care:anniversary:2026:{ordinary}"]
    assert joined_today not in {t.member_id for t in (await tasks(sessions)).values()}


async def test_birthdays_and_anniversaries_are_read_through_their_indexes(sessions: SessionFactory) -> None:
    """At a million members a day's birthdays and anniversaries are index ranges, not a pass
    over every member. An index on an expression serves only a statement that spells it
    the same way, so the statements the scan runs are asked for their plans."""
    seed = Seed(sessions)
    both = await seed.member("老友", birthday=(11, 23), since=date(2020, 11, 23))
    engine = sessions.kw["bind"]
    days = [date(2024, 1, 1) + timedelta(days=n) for n in range(366)]
    async with sessions() as session, session.begin():  # a year of birthdays and joining days but hers
        session.add_all(Member(name=f"会员{n}", birth_month=day.month, birth_day=day.day,
                               birth_md=day.month * 100 + day.day, member_since=day.replace(year=2020))
                        for n, day in enumerate(days) if (day.month, day.day) != (11, 23))
    await scan(sessions)  # on SQLite the scan leaves the planner's statistics for the next one
    if engine.dialect.name == "postgresql":
        async with engine.begin() as connection:
            await connection.exec_driver_sql("ANALYZE members")  # autovacuum's work, done now
    statements: list[tuple[str, object]] = []

    def keep(_connection, _cursor, statement, parameters, _context, _many) -> None:  # noqa: ANN001
        if statement.lstrip().startswith("SELECT members.id"):
            statements.append((statement, parameters))

    every_layer = CarePlan(scheme="value", persona=PERSONA, other_rule=CareRule(
        message=True, occasions=frozenset({"birthday", "anniversary"})))
    event.listen(engine.sync_engine, "before_cursor_execute", keep)
    try:
        async with sessions() as session:
            found = await occurrences(session, every_layer, ZONE, TODAY)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", keep)
    assert sorted((o.occasion, o.member.id) for o in found) == [("anniversary", both), ("birthday", both)]
    postgres = engine.dialect.name == "postgresql"
    plans = {}
    async with engine.connect() as connection:
        if postgres:  # with a handful of rows it would rather read the table: show what it can use
            await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        for statement, parameters in statements:
            rows = await connection.exec_driver_sql(("EXPLAIN " if postgres else "EXPLAIN QUERY PLAN ") + statement,
                                                    parameters)  # type: ignore[arg-type]
            kind = "birthday" if "birth_md IN" in statement else "anniversary"
            plans[kind] = " ".join(str(row[-1]) for row in rows)
    assert "ix_members_birth_md_calendar" in plans["birthday"]
    assert "ix_members_since_md" in plans["anniversary"]


async def test_the_care_scan_keeps_sqlite_planner_statistics(db_url: str, tmp_path: Path) -> None:
    """A deployment never runs ANALYZE, and without statistics SQLite starts the scan's
    statements from the wrong index: the daily scan keeps them (PostgreSQL's autovacuum
    keeps its own)."""
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite only")
    engine = create_database_engine(db_url)
    async with engine.begin() as connection:  # a database as 0016 left it: never analyzed
        await connection.exec_driver_sql("DELETE FROM sqlite_stat1")
    await engine.dispose()
    sessions = session_factory(create_database_engine(db_url))
    await Seed(sessions).member("小美", birthday=(11, 23))
    await scan(sessions)
    async with sessions() as session:
        analyzed = set((await session.execute(text("SELECT idx FROM sqlite_stat1 WHERE tbl = 'members'"))).scalars())
    await sessions.kw["bind"].dispose()
    assert {"ix_members_birth_md_calendar", "ix_members_since_md"} <= analyzed


async def test_festivals_solar_and_lunar_only_where_configured(sessions: SessionFactory) -> None:
    seed = Seed(sessions)
    top = await seed.member("超级", layer="super")
    core = await seed.member("核心", layer="core")
    await seed.member("普通")
    plan = CarePlan(scheme="value", top_layer="super", festivals=FESTIVALS, persona=PERSONA, rules={
        "super": CareRule(task=True, gift=True, occasions=frozenset({"festival"})),
        "core": CareRule(message=True, occasions=frozenset({"festival-中秋"})),
    })
    assert (await scan(sessions, plan, day=date(2026, 9, 20))).total == 0
    early = await scan(sessions, plan, day=date(2026, 9, 22))  # the top member's task, three days ahead
    assert dict(early.counts) == {"festival-中秋": {"task": 1}}
    on_the_day = await scan(sessions, plan, day=date(2026, 9, 25))
    assert dict(on_the_day.counts) == {"festival-中秋": {"message": 1}}
    sent = await outbox(sessions)
    assert list(sent) == [f"care:festival-中秋:2026:{core}"] and "中秋快乐" in sent[f"care:festival-中秋:2026:{core}"].body
    assert (await tasks(sessions))[f"care-task:festival-中秋:2026:{top}"].due_date == date(2026, 9, 25)
    women = await scan(sessions, plan, day=date(2027, 3, 5))
    assert dict(women.counts) == {"festival-妇女节": {"task": 1}}  # solar; the core layer takes only 中秋
    assert (await scan(sessions, PLAN, day=date(2026, 9, 25))).total == 0  # shipped rules: nothing on festivals


async def test_win_back_once_when_a_member_falls_quiet(sessions: SessionFactory) -> None:
    # Today is 23 November: quiet for 90 full days means last active on 24 August (local).
    seed = Seed(sessions)
    quiet = await seed.member("沉默")
    await seed.activity(quiet, 120)
    await seed.activity(quiet, 91)  # 24 August, 06:05 in Shanghai
    await seed.activity(quiet, 30, kind="message_out")  # ours: does not make her active
    back = await seed.member("回来了")
    await seed.activity(back, 91)
    await seed.activity(back, 1)
    buyer = await seed.member("买过", identities=("wecom",))
    await seed.activity(buyer, 91.2, order=True)  # 24 August, 01:17 in Shanghai
    not_yet = await seed.member("还没到")
    await seed.activity(not_yet, 90)  # 25 August: quiet for 89 full days so far
    long_gone = await seed.member("早就沉睡")
    await seed.activity(long_gone, 200)
    await seed.member("从未互动", since=TODAY - timedelta(days=91))  # never active: nothing to win back
    top = await seed.member("超级", layer="super")
    await seed.activity(top, 91)  # the shipped top-layer rule has no win-back
    report = await scan(sessions)
    assert dict(report.counts) == {"winback": {"message": 1, "task_for_message": 1}}
    sent, made = await outbox(sessions), await tasks(sessions)
    assert list(sent) == [f"care:winback:2026:{quiet}"] and list(made) == [f"care-task:winback:2026:{buyer}"]
    assert "好久没有你的消息" in sent[f"care:winback:2026:{quiet}"].body
    assert "很久没有和我们联系" in made[f"care-task:winback:2026:{buyer}"].body
    tomorrow = await scan(sessions, day=TODAY + timedelta(days=1))
    assert dict(tomorrow.counts) == {"winback": {"message": 1}}  # her day comes; the others not again
    assert f"care:winback:2026:{not_yet}" in await outbox(sessions)
    assert long_gone not in {r.member_id for r in (await outbox(sessions)).values()}


# ── The command ─────────────────────────────────────────────────────────────────────────


def test_care_settings_refuse_unknown_occasions_and_festivals() -> None:
    with pytest.raises(ValueError, match="unknown occasion 'birthdays'"):
        CareLayerSettings(occasions=["birthdays"])
    with pytest.raises(ValueError, match="no festival '圣诞'"):
        CareSettings(layers={"core": CareLayerSettings(occasions=["festival-圣诞"])})
    with pytest.raises(ValueError, match="not a day of the year"):
        CareSettings(festivals=[{"name": "x", "date": "02-30"}])
    with pytest.raises(ValueError, match="no layer 'vip'"):
        care_plan(Settings(care=CareSettings(layers={"vip": CareLayerSettings()})))
    plan = care_plan(Settings())
    assert plan.top_layer == "super" and plan.rule_for("super").gift and plan.rule_for("core").message
    assert plan.six_moments is not None and plan.six_moments.care_task_kinds == {"birthday", "anniversary"}
    assert [f.name for f in plan.festivals] == ["春节", "元宵", "妇女节", "端午", "七夕", "中秋", "重阳"]


def test_siyu_check_finds_care_problems(tmp_path: Path) -> None:
    renderer = Renderer()
    assert care_problems(Settings(), renderer.problems) == []  # the shipped templates render
    (tmp_path / "care").mkdir()
    (tmp_path / "care" / "birthday.txt.j2").write_text("{{ member.nickname }}生日快乐")
    broken = Settings(care=CareSettings(scan_cron="every day"))
    found = care_problems(broken, Renderer([tmp_path]).problems)
    assert [p.split(":")[0] for p in found] == ["care.scan_cron", "care.templates.birthday"]
    assert care_problems(Settings(care=CareSettings(scheme="nope")), renderer.problems) == [
        "care.scheme: no layer scheme 'nope' (configured: value, lifecycle, evolution)"]


async def test_care_run_prints_counts_and_samples(db_url: str, sessions: SessionFactory,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    seed = Seed(sessions)
    await seed.member("小美", birthday=(11, 23))
    settings = Settings(storage={"url": db_url}, six_moments={"enabled": False})
    # care_run runs its own event loop: call it from a thread.
    code = await asyncio.to_thread(care_run, settings, TODAY, True, True)
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["dry_run"] and out["counts"] == {"birthday": {"message": 1}}
    assert out["samples"][0]["to"] == "sandbox-小美" and await outbox(sessions) == {}
    assert await asyncio.to_thread(care_run, settings, TODAY, False, False) == 0
    assert "birthday" in capsys.readouterr().out
    async with sessions() as session:
        assert (await session.execute(select(func.count()).select_from(OutboxEntry))).scalar_one() == 1


async def test_a_holdout_share_is_never_sent_and_recorded_as_held_out(sessions: SessionFactory) -> None:
    """Half of the ordinary layer held out of birthdays: about half get no message; they
    are recorded as held out (once, whatever reruns); a global control group that gets no
    care when so configured is held out too."""
    from dataclasses import replace

    from storage.outcome_models import OutcomeTouch

    seed = Seed(sessions)
    ids = [await seed.member(f"会员{n}", birthday=(11, 23)) for n in range(40)]
    plan = replace(PLAN, other_rule=replace(PLAN.other_rule, holdout=0.5))
    report = await scan(sessions, plan)
    await scan(sessions, plan)  # a rerun holds out the same members, records nothing twice
    sent = {r.member_id for r in (await outbox(sessions)).values()}
    async with sessions() as session:
        held = (await session.execute(select(OutcomeTouch))).scalars().all()
    held_ids = {t.member_id for t in held}
    assert len(held) == len(held_ids) == report.held_out
    assert 10 <= len(held_ids) <= 30 and held_ids.isdisjoint(sent) and held_ids | sent == set(ids)
    assert all((t.source_kind, t.source_ref, t.held_out, t.layer) == ("occasion", "birthday", True, "ordinary")
               for t in held)
    # Next year's birthday draws again: not the same members left out of every birthday.
    from scheduler.holdout import held_out

    next_year = {m for m in ids if held_out(m, "occasion:birthday", 2027, 0.5)}
    assert next_year != held_ids
    # Everyone in a global control group that gets no care: nothing is sent at all.
    async with sessions() as session, session.begin():
        await session.execute(OutboxEntry.__table__.delete())  # type: ignore[attr-defined]
    everyone = replace(PLAN, global_control=0.2, control_gets_care=False)
    from scheduler.holdout import in_global_control

    control = {m for m in ids if in_global_control(m, 0.2)}
    await run_care_scan(sessions, everyone, Renderer(), ZONE, NOW, day=TODAY)
    sent = {r.member_id for r in (await outbox(sessions)).values()}
    assert control and sent.isdisjoint(control) and sent == set(ids) - control
