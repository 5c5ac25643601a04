"""The operators' pages /admin/rules (tag rules, layer schemes, with counts) and
/admin/staff (work per staff member and store, and handing work over)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import select

from bot.console.rules_page import condition_reading, rule_reading, scheme_view
from bot.console.staff_page import grouped_rates
from bot.settings.layers import DEFAULT_SCHEMES
from bot.settings.model import load_settings
from bot.settings.rules import TagRuleSettings
from bot.web.app import build_app
from handlers.task_rates import TaskFact, rates
from scheduler.layer_rules import parse_condition
from storage.engine import SessionFactory
from storage.models import LayerAssignment, LayerRun, Member, MemberTag, OutboxEntry, Staff, StaffTask, Tag, utcnow
from storage.staff_stats import DueGroup
from tests.conftest import start_server, write_config
from tests.console_harness import CONSOLE_CONFIG, PASSWORD, ConsoleClient, ConsoleServer, seed_brand

LogIn = Callable[..., Awaitable[ConsoleClient]]
ZONE = ZoneInfo("Asia/Shanghai")  # the zone of tests/conftest.py's BASE_CONFIG

# Besides the base config's keyword rule interest-bread (面包控 in 口味偏好): a second rule
# giving the same tag, a behaviour rule in an exclusive group with expiry, an event rule.
RULES = """
[[tags.rules]]
id = "bread-regex"
kind = "regex"
tag = "面包控"
group = "口味偏好"
pattern = "欧包|贝果"
weight = 2
topic = "面包"

[[tags.rules]]
id = "silent-30"
kind = "behaviour"
tag = "沉默"
group = "活跃度"
measure = "silent"
days = 30

[[tags.rules]]
id = "joined-vip"
kind = "event"
tag = "群成员"
event = "joined_group"
subject = "VIP 群"

[[tags.groups]]
name = "活跃度"
exclusive = true
expire_days = 60
"""


@pytest.fixture
async def console(db_url: str, tmp_path: Path, sessions: SessionFactory) -> AsyncIterator[ConsoleServer]:
    """The harness's console (same brand, same logins) with more tag rules configured."""
    settings = load_settings(write_config(tmp_path, db_url, CONSOLE_CONFIG + RULES))
    brand = await seed_brand(sessions)
    async with aiohttp.ClientSession() as http:
        running = await start_server(build_app(settings), http)
        yield ConsoleServer(running, brand)
        await running.stop()


@pytest.fixture
async def log_in(console: ConsoleServer) -> AsyncIterator[LogIn]:
    """The harness's `log_in`, landing on the task list rather than the home page, so
    these tests depend on no page but their own and the tasks."""
    clients: list[aiohttp.ClientSession] = []

    async def signed_in(login: str) -> ConsoleClient:
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # cookies for 127.0.0.1
        clients.append(http)
        client = ConsoleClient(console.base, http)
        token = re.search(r'name="csrf-token" content="([^"]+)"', await client.get("/admin/login"))
        assert token
        form = {"login": login, "password": PASSWORD, "csrf": token.group(1), "next": "/admin/tasks"}
        async with http.post(console.base + "/admin/login", data=form) as response:
            assert response.status == 200 and response.url.path == "/admin/tasks", await response.text()
        return client

    yield signed_in
    for http in clients:
        await http.close()


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), ZONE).astimezone(timezone.utc)


def row(page: str, testid: str, key: str, value: str) -> str:
    found = re.search(rf'<tr data-testid="{testid}" {key}="{re.escape(value)}"[^>]*>(.*?)</tr>', page, re.S)
    assert found, f"no {testid} row {value}"
    return found.group(1)


def cell(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</td>', html, re.S)
    assert found, f"no {testid} cell"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


# -- pure parts --------------------------------------------------------------------------

def test_grouped_rates_count_as_the_tasks_one_by_one() -> None:
    today = date(2025, 6, 30)
    groups = [
        DueGroup(1, date(2025, 6, 20), "done", 5, 3),
        DueGroup(1, date(2025, 6, 21), "skipped", 2, 0),
        DueGroup(1, date(2025, 6, 22), "open", 4, 0),
        DueGroup(1, today, "open", 1, 0),  # due today: counted due, not overdue
        DueGroup(1, date(2025, 7, 2), "done", 3, 3),  # not due yet: not counted
    ]
    facts = [TaskFact(g.due, g.status, g.due if n < g.on_time else None) for g in groups for n in range(g.count)]
    assert grouped_rates(groups, today) == rates(facts, today)
    summed = grouped_rates(groups, today)
    assert (summed.due, summed.done, summed.on_time, summed.skipped, summed.overdue) == (12, 5, 3, 2, 4)


def test_rules_and_conditions_read_as_words() -> None:
    keyword = TagRuleSettings(id="k", tag="t", keywords=["面包", "吐司"], match="all")
    assert (keyword.kind, rule_reading(keyword).fields) == ("keyword", {"words": "面包、吐司"})
    assert rule_reading(keyword).phrase == "含全部关键词：{words}"
    silent = TagRuleSettings(id="s", kind="behaviour", tag="t", measure="silent", days=30)
    assert rule_reading(silent).phrase == "{days} 天没有任何互动"
    busy = TagRuleSettings(id="b", kind="behaviour", tag="t", measure="messages", days=7, count=5)
    assert rule_reading(busy).fields == {"days": 7, "count": 5}
    assert rule_reading(TagRuleSettings(id="e", kind="event", tag="t", event="joined_group")).phrase == "加入任意客户群"
    channel = TagRuleSettings(id="c", kind="event", tag="t", event="added_via_channel", subject="store-qr")
    assert rule_reading(channel).fields == {"subject": "store-qr"}

    r = condition_reading(parse_condition("r_score", ">= 4"))
    assert (r.phrase, r.op, r.value) == ("R 分（最近下单）", "≥", "4")
    window = condition_reading(parse_condition("interactions_90d", 0))
    assert (window.fields, window.op, window.value) == ({"n": 90}, "=", "0")
    assert condition_reading(parse_condition("paid_member", True)).phrase == "是付费会员"
    assert condition_reading(parse_condition("paid_member", "!= true")).phrase == "不是付费会员"
    assert condition_reading(parse_condition("monetary", "> 2.5")).value == "2.5"


def test_a_scheme_lists_each_layer_once_with_its_ways_in_and_the_unlayered_last() -> None:
    value = DEFAULT_SCHEMES[0]
    view = scheme_view(value, {"core": 3, "dormant": 1, "gone": 2, "(none)": 4}, None)
    assert [line.name for line in view.layers] == ["super", "core", "important", "dormant", "ordinary", "gone", "(none)"]
    dormant = view.layers[3]
    assert len(dormant.alternatives) == 2 and dormant.members == 1 and dormant.share == 0.1
    assert view.layers[4].alternatives == [[view.layers[4].alternatives[0][0]]]
    assert view.layers[4].alternatives[0][0].phrase == "其余所有会员"
    assert view.layers[5].alternatives == [] and view.members == 10


# -- /admin/rules ------------------------------------------------------------------------

async def test_rules_page_counts_members_per_rule_and_per_layer(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    m = console.brand.members
    now = utcnow()
    async with sessions() as session, session.begin():
        gone = Member(name="孙丽", left_at=now - timedelta(days=1))
        bread, silent = Tag(name="面包控", group="口味偏好"), Tag(name="沉默", group="活跃度")
        session.add_all([gone, bread, silent])
        await session.flush()
        session.add_all([
            MemberTag(member_id=m["王芳"], tag_id=bread.id, source="rule", source_ref="interest-bread",
                      first_seen=now - timedelta(days=20), last_seen=now - timedelta(days=1)),
            MemberTag(member_id=m["李娜"], tag_id=bread.id, source="rule", source_ref="bread-regex",
                      first_seen=now - timedelta(days=20), last_seen=now - timedelta(days=10)),
            MemberTag(member_id=m["赵雪"], tag_id=bread.id, source="staff", source_ref="zhoumin"),
            MemberTag(member_id=gone.id, tag_id=bread.id, source="rule", source_ref="interest-bread"),  # left: not counted
            MemberTag(member_id=m["李娜"], tag_id=silent.id, source="rule", source_ref="silent-30"),
            LayerAssignment(member_id=m["王芳"], scheme="value", layer="super"),
            LayerAssignment(member_id=m["李娜"], scheme="value", layer="dormant"),
            LayerAssignment(member_id=gone.id, scheme="value", layer="super"),  # left: not counted
            LayerRun(scheme="value", ran_at=datetime(2025, 5, 1, 2, 0, tzinfo=timezone.utc)),
        ])

    page = await (await log_in("ops")).get("/admin/rules")

    expected = {"interest-bread": ("3", "1", "1"), "bread-regex": ("3", "1", "0"),
                "silent-30": ("1", "1", "1"), "joined-vip": ("0", "0", "0")}
    for rule, (tagged, given, recent) in expected.items():
        line = row(page, "rule-row", "data-rule", rule)
        assert (cell(line, "rule-tagged"), cell(line, "rule-given"), cell(line, "rule-recent")) == (tagged, given, recent)
    assert "欧包|贝果" in row(page, "rule-row", "data-rule", "bread-regex")
    assert "加入客户群「VIP 群」" in row(page, "rule-row", "data-rule", "joined-vip")
    silent_row = row(page, "rule-row", "data-rule", "silent-30")
    assert "30 天没有任何互动" in silent_row and "互斥" in silent_row and "60 天未命中即失效" in silent_row

    value = re.search(r'data-scheme="value".*?</table>', page, re.S)
    assert value
    counts = {layer: cell(html, "layer-count").split("\n")[0].strip() for layer, html in
              re.findall(r'data-testid="layer-row" data-layer="([^"]+)">(.*?)</tr>', value.group(0), re.S)}
    assert counts == {"super": "1", "core": "0", "important": "0", "dormant": "1", "ordinary": "0", "(none)": "1"}
    assert "R 分（最近下单） ≥ 4" in value.group(0)
    assert "上次计算：2025-05-01 10:00" in value.group(0)  # 02:00 UTC in Shanghai
    lifecycle = re.search(r'data-scheme="lifecycle".*?</table>', page, re.S)
    assert lifecycle and "还没有计算过" in lifecycle.group(0)
    # Where to change them: keyword rules here, the rest in the settings editors.
    assert 'href="/admin/settings/tags"' in page and 'href="/admin/settings/layers"' in page and "siyu check" in page
    assert 'data-testid="rule-form"' in page


# -- /admin/staff ------------------------------------------------------------------------

async def seed_tasks(sessions: SessionFactory, console: ConsoleServer) -> date:
    """刘洋: one task done on time (23:30 on its due day), one late (00:30 the day after,
    still the due day in UTC), one skipped, one overdue, an old one done outside the
    window; plus the harness's birthday task (due tomorrow). One unassigned overdue task."""
    s, m = console.brand.staff, console.brand.members
    today = datetime.now(ZONE).date()
    liu = s["liuyang"]

    def task(key: str, due: date, status: str, done_at: datetime | None = None, staff: int | None = liu) -> StaffTask:
        return StaffTask(dedupe_key=key, staff_id=staff, member_id=m["王芳"], kind="care", title=key,
                         due_date=due, status=status, done_at=done_at)

    async with sessions() as session, session.begin():
        session.add_all([
            task("on-time", today - timedelta(days=5), "done", local(today - timedelta(days=5), 23, 30)),
            task("late", today - timedelta(days=6), "done", local(today - timedelta(days=5), 0, 30)),
            task("skipped", today - timedelta(days=2), "skipped", local(today - timedelta(days=2), 9)),
            task("overdue", today - timedelta(days=1), "open"),
            task("old", today - timedelta(days=40), "done", local(today - timedelta(days=40), 9)),
            task("nobody", today - timedelta(days=1), "open", staff=None),
        ])
    return today


async def test_staff_page_shows_work_and_rates_per_staff_member_and_store(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    await seed_tasks(sessions, console)
    page = await (await log_in("ops")).get("/admin/staff")

    def figures(html: str) -> tuple[str, ...]:
        return tuple(cell(html, name) for name in ("open", "overdue", "done", "skipped", "completion", "on-time", "members"))

    liu = figures(row(page, "staff-row", "data-staff", "liuyang"))
    assert liu == ("2", "1", "2", "1", "50%", "25%", "2")  # 4 due: 2 done (1 on time), 1 skipped (not done), 1 overdue
    assert figures(row(page, "staff-row", "data-staff", "zhoumin")) == ("1", "1", "0", "0", "0%", "0%", "1")
    assert figures(row(page, "staff-row", "data-staff", "chenjing")) == ("0", "0", "0", "0", "—", "—", "0")
    assert figures(row(page, "store-row", "data-store", "静安店")) == ("2", "1", "2", "1", "50%", "25%", "2")
    assert f'id="store-{console.brand.stores["jingan"]}"' in page  # the overview links each store here
    assert figures(row(page, "store-row", "data-store", "徐汇店")) == ("1", "1", "0", "0", "0%", "0%", "1")
    assert figures(row(page, "store-row", "data-store", "(unassigned)"))[:2] == ("1", "1")
    total = re.search(r'data-testid="store-total">(.*?)</tr>', page, re.S)
    assert total and figures(total.group(1))[:2] == ("4", "3")
    assert "1 个待办任务没有店员负责" in page and "其中 1 个已逾期" in page
    assert 'href="/admin/tasks?status=overdue"' in page


async def test_handing_over_moves_open_tasks_and_members_and_stops_the_login(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    await seed_tasks(sessions, console)
    s = console.brand.staff
    liuyang = await log_in("liuyang")
    ops = await log_in("ops")
    page = await ops.get("/admin/staff")
    assert f'href="/admin/staff?hand_over={s["liuyang"]}#hand-over"' in row(page, "staff-row", "data-staff", "liuyang")
    assert 'data-testid="hand-over-form"' not in page
    form = await ops.get(f"/admin/staff?hand_over={s['liuyang']}")
    assert 'data-testid="hand-over-form" data-staff="liuyang"' in form
    assert f'<option value="{s["chenjing"]}" selected>' in form  # the store manager by default
    assert "待办任务 2 个，负责会员 2 位。" in form

    # Without the CSRF token nothing happens; nor with herself as the receiver.
    await ops.post(f"/admin/staff/{s['liuyang']}/hand-over", {"to": str(s["chenjing"])}, expect=403, csrf=False)
    problem = await ops.post(f"/admin/staff/{s['liuyang']}/hand-over", {"to": str(s["liuyang"])}, expect=400)
    assert "请选择一位在职的其他同事" in problem
    assert "我的任务" in await liuyang.get("/admin/tasks")

    done = await ops.post(f"/admin/staff/{s['liuyang']}/hand-over", {"to": str(s["chenjing"])})
    assert "2 个任务和 2 位会员已交给 陈静，刘洋 已停用。" in done
    assert "已交给" not in await ops.get("/admin/staff")  # the notice shows once

    async with sessions() as session:
        tasks = {t.dedupe_key: t for t in (await session.execute(select(StaffTask))).scalars()}
        owners = {mm.name: mm.owner_staff_id for mm in (await session.execute(select(Member))).scalars()}
        gone = await session.get(Staff, s["liuyang"])
    assert tasks["care:birthday:wangfang"].staff_id == s["chenjing"] and tasks["overdue"].staff_id == s["chenjing"]
    assert {tasks[k].staff_id for k in ("on-time", "late", "skipped", "old")} == {s["liuyang"]}  # history stays hers
    assert tasks["churn:zhaoxue"].staff_id == s["zhoumin"] and tasks["nobody"].staff_id is None
    assert owners == {"王芳": s["chenjing"], "李娜": s["chenjing"], "赵雪": s["zhoumin"]}
    assert gone is not None and not gone.active
    assert 'data-testid="login-form"' in await liuyang.get("/admin/tasks")  # her session no longer signs her in
    async with sessions() as session:  # 陈静 is told what she received, with a link to her tasks
        told = (await session.execute(select(OutboxEntry).where(OutboxEntry.kind == "staff_prompt"))).scalars().all()
    assert [(t.recipient, json.loads(t.meta)["link"]) for t in told] == [("chenjing", "/admin/tasks")]
    assert "刘洋" in told[0].body

    page = await ops.get("/admin/staff")
    assert "已停用" in row(page, "staff-row", "data-staff", "liuyang")
    chen = row(page, "staff-row", "data-staff", "chenjing")
    assert (cell(chen, "open"), cell(chen, "members")) == ("2", "2")


async def test_handing_over_to_nobody_leaves_the_work_unassigned(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    s = console.brand.staff
    ops = await log_in("ops")
    # 徐汇店 has no manager to take over by default: the operator must choose.
    form = await ops.get(f"/admin/staff?hand_over={s['zhoumin']}")
    assert '<option value="" selected disabled>' in form and " selected>" not in form.replace("selected disabled>", "")
    assert "没有在职店长" in await ops.post(f"/admin/staff/{s['zhoumin']}/hand-over", {}, expect=400)
    done = await ops.post(f"/admin/staff/{s['zhoumin']}/hand-over", {"to": "none"})
    assert "1 个任务和 1 位会员已转为未分配，周敏 已停用。" in done
    assert "1 个待办任务没有店员负责" in done
    async with sessions() as session:
        task = await session.get(StaffTask, console.brand.tasks["revisit"])
        member = await session.get(Member, console.brand.members["赵雪"])
    assert task is not None and task.staff_id is None and member is not None and member.owner_staff_id is None


@pytest.mark.parametrize("login", ["liuyang", "chenjing"])
async def test_staff_logins_may_not_open_these_pages_nor_hand_over(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory, login: str
) -> None:
    client = await log_in(login)
    await client.get("/admin/rules", expect=403)
    if login == "chenjing":  # a store manager sees her store's staff, and only them
        page = await client.get("/admin/staff")
        assert 'data-staff="liuyang"' in page and 'data-staff="zhoumin"' not in page
        assert 'href="/admin/staff?hand_over=' not in page
    else:
        await client.get("/admin/staff", expect=403)
    await client.post(f"/admin/staff/{console.brand.staff['zhoumin']}/hand-over", {"to": "none"}, expect=403)
    async with sessions() as session:
        zhoumin = await session.get(Staff, console.brand.staff["zhoumin"])
    assert zhoumin is not None and zhoumin.active
