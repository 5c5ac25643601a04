"""The console overview (/admin/overview), through the real server and database: the layer
pyramid and its week, the engagement charts, today's care, task completion per store and
delivery health."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from html.parser import HTMLParser
import re
from zoneinfo import ZoneInfo

from sqlalchemy import delete, update

from bot.console.overview_page import pyramid, shorten, store_rates
from handlers.task_rates import TaskFact, rates
from storage.engine import SessionFactory
from storage.models import (
    EngagementDay,
    LayerAssignment,
    Member,
    MemberIdentity,
    OutboxEntry,
    Staff,
    StaffTask,
    Store,
    utcnow,
)
from storage.overview import TaskTally
from tests.console_harness import ConsoleClient, ConsoleServer

LogIn = Callable[..., Awaitable[ConsoleClient]]
ZONE = ZoneInfo("Asia/Shanghai")  # tests/conftest.py's timezone
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


# -- reading the page -------------------------------------------------------------------

@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # text directly inside, and of children, in order

    @property
    def text(self) -> str:
        return " ".join("".join(self.texts).split())

    def all(self, testid: str | None = None, tag: str | None = None) -> list[Node]:
        found = []
        for child in self.children:
            if (testid is None or child.attrs.get("data-testid") == testid) and (tag is None or child.tag == tag):
                found.append(child)
            found.extend(child.all(testid, tag))
        return found

    def one(self, testid: str) -> Node:
        found = self.all(testid)
        assert len(found) == 1, f"{len(found)} elements with data-testid={testid!r}"
        return found[0]


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root = Node("root", {})
        self.open = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.open[-1].children.append(node)
        if tag not in VOID:
            self.open.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.open[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.open) - 1, 0, -1):
            if self.open[depth].tag == tag:
                del self.open[depth:]
                return

    def handle_data(self, data: str) -> None:
        for node in self.open:
            node.texts.append(data)


def parse(page: str) -> Node:
    tree = _Tree()
    tree.feed(page)
    return tree.root


def rows_by(section: Node, testid: str, key: str) -> dict[str, Node]:
    return {row.attrs[key]: row for row in section.all(testid)}


# -- seeding ----------------------------------------------------------------------------

def local_today() -> date:
    return datetime.now(ZONE).date()


def at_local(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), ZONE).astimezone(timezone.utc)


async def seed_layers(sessions: SessionFactory, console: ConsoleServer, today: date) -> int:
    """Now: 王芳 super, 李娜 and 赵雪 core, 孙悦 without a layer. Snapshots: a week ago
    super 2 and core 1; yesterday and today with activity. Returns 孙悦's id."""
    m = console.brand.members
    async with sessions() as session, session.begin():
        newcomer = Member(name="孙悦", store_id=console.brand.stores["xuhui"])
        session.add(newcomer)
        session.add_all([
            LayerAssignment(member_id=m["王芳"], scheme="value", layer="super"),
            LayerAssignment(member_id=m["李娜"], scheme="value", layer="core"),
            LayerAssignment(member_id=m["赵雪"], scheme="value", layer="core"),
            LayerAssignment(member_id=m["赵雪"], scheme="lifecycle", layer="active"),
        ])
        week_ago, yesterday = today - timedelta(days=7), today - timedelta(days=1)
        session.add_all([
            EngagementDay(day=week_ago, scheme="value", layer="super", members=2, active=1, messages_in=4),
            EngagementDay(day=week_ago, scheme="value", layer="core", members=1, active=0),
            EngagementDay(day=yesterday, scheme="value", layer="super", members=1, active=1, messages_in=6),
            EngagementDay(day=yesterday, scheme="value", layer="core", members=2, active=2, messages_in=3),
            EngagementDay(day=today, scheme="value", layer="super", members=1, active=0),
            EngagementDay(day=today, scheme="value", layer="core", members=2, active=1, messages_in=1),
            # Older than any chart: never drawn.
            EngagementDay(day=today - timedelta(days=120), scheme="value", layer="super", members=9, active=9),
        ])
        await session.flush()
        return newcomer.id  # type: ignore[return-value]


def _row(key: str, status: str, **values: object) -> OutboxEntry:
    return OutboxEntry(dedupe_key=key, platform="sandbox", recipient="王芳", kind="marketing", body="新品上市",
                       status=status, **values)  # type: ignore[arg-type]


async def seed_outbox(sessions: SessionFactory, now: datetime) -> None:
    """Rows the delivery loop leaves alone: every one either not yet due or finished."""
    long_error = "HTTP 503 from the platform: service unavailable, request id " + "x" * 200
    until = now + timedelta(hours=10)
    async with sessions() as session, session.begin():
        session.add_all([
            _row("later-1", "pending", not_before=now + timedelta(hours=2)),
            _row("later-2", "pending", not_before=now + timedelta(hours=3)),
            _row("deferred-1", "deferred", not_before=until, last_error="quiet hours until 11-25 08:30"),
            _row("deferred-2", "deferred", not_before=until, last_error="quiet hours until 11-25 08:30"),
            _row("deferred-3", "deferred", not_before=now + timedelta(hours=1), last_error="platform asked to wait"),
            *(_row(f"held-{n}", "held", not_before=now - timedelta(hours=n + 1),
                   last_error="member opted out of marketing") for n in range(3)),
            _row("held-old", "held", not_before=now - timedelta(days=10), last_error="member opted out of marketing"),
            _row("failed-1", "failed", not_before=now - timedelta(hours=2), last_error=long_error),
            _row("failed-2", "failed", not_before=now - timedelta(hours=5), last_error=long_error),
            _row("failed-old", "failed", not_before=now - timedelta(hours=30), last_error="too old to show"),
            *(_row(f"sent-{n}", "sent", not_before=now - timedelta(hours=2), sent_at=now - timedelta(hours=1))
              for n in range(4)),
            _row("sent-old", "sent", not_before=now - timedelta(days=2), sent_at=now - timedelta(days=2)),
        ])


async def seed_tasks(sessions: SessionFactory, console: ConsoleServer, today: date, now: datetime) -> list[tuple[str | None, TaskFact]]:
    """Tasks of both stores and one unassigned; returns (store, fact) of each task with a
    due date in the window, as handlers.task_rates reads them."""
    staff, members, seeded = console.brand.staff, console.brand.members, console.brand.tasks
    day = lambda n: today - timedelta(days=n)  # noqa: E731
    tasks = [  # (store, staff, due, status, done_at)
        ("静安店", staff["liuyang"], day(5), "done", at_local(day(5), 15)),  # on time
        ("静安店", staff["liuyang"], day(4), "done", at_local(day(2), 9)),  # late
        ("静安店", staff["chenjing"], day(2), "skipped", at_local(day(2), 18)),
        ("静安店", staff["liuyang"], day(40), "done", at_local(day(40), 10)),  # before the window
        ("徐汇店", staff["zhoumin"], today, "done", now),  # on time
        (None, None, day(1), "open", None),  # overdue, no one's
    ]
    async with sessions() as session, session.begin():
        # The harness's tasks, pinned to the brand's day: 刘洋's due tomorrow, 周敏's overdue.
        await session.execute(update(StaffTask).where(StaffTask.id == seeded["birthday"]).values(due_date=day(-1)))
        await session.execute(update(StaffTask).where(StaffTask.id == seeded["revisit"]).values(due_date=day(3)))
        for n, (_, staff_id, due, status, done_at) in enumerate(tasks):
            session.add(StaffTask(dedupe_key=f"overview-{n}", staff_id=staff_id, member_id=members["李娜"],
                                  kind="at_risk", title=f"回访 {n}", due_date=due, status=status, done_at=done_at))
    facts = [(store, TaskFact(due, status, done_at.astimezone(ZONE).date() if done_at else None))
             for store, _, due, status, done_at in tasks if due >= day(29)]
    facts += [("静安店", TaskFact(day(-1), "open", None)), ("徐汇店", TaskFact(day(3), "open", None))]
    return facts


async def seed_care(sessions: SessionFactory, console: ConsoleServer, today: date) -> dict[str, int]:
    """王芳 (super, the top layer: a gift task) and 李娜 (core: a message) have their
    birthday today; the scan already made 王芳's task. 赵雪 has a six-moments task due."""
    m, staff = console.brand.members, console.brand.staff
    md = today.month * 100 + today.day
    async with sessions() as session, session.begin():
        await session.execute(update(StaffTask).where(StaffTask.id == console.brand.tasks["birthday"])
                              .values(due_date=today + timedelta(days=1)))  # the harness's, on the brand's day
        await session.execute(update(Member).where(Member.id.in_([m["王芳"], m["李娜"]])).values(  # type: ignore[union-attr]
            birth_month=today.month, birth_day=today.day, birth_md=md, birthday_calendar="solar", member_since=None))
        gift = StaffTask(dedupe_key=f"care-task:birthday:{today.year}:{m['王芳']}", staff_id=staff["liuyang"],
                         member_id=m["王芳"], kind="care", title="生日关怀：王芳", due_date=today)
        moment = StaffTask(dedupe_key="six:zhaoxue:1", staff_id=staff["zhoumin"], member_id=m["赵雪"],
                           kind="six_moments", title="新季预览：赵雪", due_date=today)
        session.add_all([gift, moment])
        await session.flush()
        return {"gift": gift.id, "moment": moment.id}  # type: ignore[dict-item]


# -- pure parts -------------------------------------------------------------------------

def test_without_a_snapshot_seven_days_back_the_latest_of_the_week_before_is_compared() -> None:
    today = date(2026, 11, 24)
    series = [
        EngagementDay(day=date(2026, 11, 10), scheme="value", layer="super", members=50),  # too old
        EngagementDay(day=date(2026, 11, 15), scheme="value", layer="super", members=7),
        EngagementDay(day=date(2026, 11, 15), scheme="value", layer="gone", members=2),
        EngagementDay(day=date(2026, 11, 23), scheme="value", layer="super", members=8, active=4),
    ]
    rows, compared = pyramid(["super", "core"], {"super": 9, "(none)": 1}, series, today)
    assert compared == date(2026, 11, 15)
    assert [(r.layer, r.members, r.before, r.change) for r in rows] == [
        ("super", 9, 7, 2), ("core", 0, 0, 0), ("gone", 0, 2, -2), ("(none)", 1, 0, 1)]
    assert rows[0].share == 90.0 and rows[0].width == 100.0 and rows[0].active == 4.0
    rows, compared = pyramid(["super"], {"super": 9}, series[:1], today)
    assert compared is None and rows[0].before is None and rows[0].change is None


def test_store_rates_add_up_like_the_task_arithmetic() -> None:
    tallies = [
        TaskTally(1, "静安店", "jingan", "done", True, 3, 2),
        TaskTally(1, "静安店", "jingan", "open", True, 1, 0),
        TaskTally(1, "静安店", "jingan", "open", False, 2, 0),  # due today: not late yet
        TaskTally(None, None, None, "skipped", True, 1, 0),
    ]
    stores, overall = store_rates(tallies)
    assert [(s.code, s.rates.due, s.rates.done, s.rates.on_time, s.rates.overdue) for s in stores] == [
        ("jingan", 6, 3, 2, 1), (None, 1, 0, 0, 0)]
    assert overall.completion == 3 / 7 and overall.skipped == 1 and overall.on_time_rate == 2 / 7


def test_reasons_are_shortened_on_one_line() -> None:
    assert shorten("quiet hours\n until 08:30") == "quiet hours until 08:30"
    assert shorten("x" * 100, 10) == "x" * 9 + "…"
    assert shorten(None) == ""


# -- through the server -----------------------------------------------------------------

async def test_the_overview_is_for_operators_and_a_store_manager_sees_her_stores(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    staff = await log_in("liuyang")
    page = await staff.get("/admin/overview", expect=403)
    assert "仅运营可见" in page and 'data-testid="error-page"' in page  # a readable page, not bare text
    manager = await log_in("chenjing")
    async with sessions() as session, session.begin():
        skipped = await session.get(StaffTask, console.brand.tasks["birthday"])
        assert skipped is not None
        skipped.status, skipped.due_date = "skipped", skipped.due_date - timedelta(days=2)
    store = await manager.get("/admin/overview")
    assert 'data-testid="store-overview"' in store and "静安店" in store and "徐汇店" not in store
    assert re.search(r'data-testid="members-total">2<', store)  # 王芳 and 李娜, not 赵雪
    assert re.search(r'data-testid="completion">0%<', store)  # skipped is not done
    assert re.search(r'data-testid="skipped">1<', store)
    operator = await log_in("ops")
    assert parse(await operator.get("/admin/overview")).one("pyramid")


async def test_the_pyramid_shows_each_layer_now_and_its_change_over_the_week(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    today = local_today()
    await seed_layers(sessions, console, today)
    page = parse(await (await log_in("ops")).get("/admin/overview"))
    pyramid = page.one("pyramid")
    rows = rows_by(pyramid, "pyramid-row", "data-layer")
    # Every layer of the scheme, top first, empty ones too, then members without a layer.
    assert list(rows) == ["super", "core", "important", "dormant", "ordinary", "(none)"]
    numbers = {layer: (row.one("layer-members").text, row.one("layer-before").text, row.one("layer-change").text)
               for layer, row in rows.items()}
    assert numbers == {"super": ("1", "2", "-1"), "core": ("2", "1", "+1"), "important": ("0", "0", "0"),
                       "dormant": ("0", "0", "0"), "ordinary": ("0", "0", "0"), "(none)": ("1", "0", "+1")}
    assert "超级用户" in rows["super"].text and "核心用户" in rows["core"].text and "未分层" in rows["(none)"].text
    assert pyramid.one("members-total").text == "4"
    assert f"{today - timedelta(days=7):%Y-%m-%d}" in pyramid.text  # what the change is against
    assert not pyramid.all("pyramid-empty")

    # Another scheme: only 赵雪 has a lifecycle layer; no snapshot a week ago.
    page = parse(await (await log_in("ops")).get("/admin/overview?scheme=lifecycle"))
    pyramid = page.one("pyramid")
    assert pyramid.attrs["data-scheme"] == "lifecycle"
    rows = rows_by(pyramid, "pyramid-row", "data-layer")
    assert {layer: row.one("layer-members").text for layer, row in rows.items()} == {
        "new": "0", "active": "1", "dormant": "0", "ordinary": "0", "(none)": "3"}
    assert {row.one("layer-change").text for row in rows.values()} == {"—"}
    assert pyramid.one("no-week-ago")
    chosen = [a for a in page.all("scheme-choice") if "ok" in a.attrs["class"].split()]
    assert [a.attrs["data-scheme"] for a in chosen] == ["lifecycle"]


async def test_charts_draw_a_line_per_layer_with_dated_points(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    today = local_today()
    await seed_layers(sessions, console, today)
    client = await log_in("ops")
    page = parse(await client.get("/admin/overview?days=30"))
    charts = rows_by(page, "chart", "data-metric")
    assert list(charts) == ["members", "active", "messages_in"]
    active = charts["active"]
    lines = rows_by(active, "chart-line", "data-series")
    assert list(lines) == ["超级用户", "核心用户"]
    tips = [t.text for t in lines["超级用户"].all(tag="title")]
    assert tips == [f"超级用户 · {today - timedelta(days=7):%Y-%m-%d} · 1",
                    f"超级用户 · {today - timedelta(days=1):%Y-%m-%d} · 1",
                    f"超级用户 · {today:%Y-%m-%d} · 0"]
    # Days without a snapshot break the line: a week ago stands apart from the last two days.
    assert len(lines["超级用户"].all(tag="polyline")) == 2
    days = [t.text for t in active.all("chart-day")]
    assert days[0] == f"{today - timedelta(days=29):%m-%d}" and days[-1] == f"{today:%m-%d}"
    assert [li.text for li in active.one("chart-legend").all(tag="li")] == ["超级用户", "核心用户"]
    messages = rows_by(charts["messages_in"], "chart-line", "data-series")
    assert [t.text.rsplit(" · ", 1)[1] for t in messages["超级用户"].all(tag="title")] == ["4", "6", "0"]

    # A week: the snapshot of a week ago is out of the picture; an unknown period is 30 days.
    week = parse(await client.get("/admin/overview?days=7")).all("chart")[1]
    assert len(rows_by(week, "chart-line", "data-series")["超级用户"].all(tag="circle")) == 2
    assert [t.text for t in week.all("chart-day")][0] == f"{today - timedelta(days=6):%m-%d}"
    odd = parse(await client.get("/admin/overview?days=12")).all("chart")[1]
    assert [t.text for t in odd.all("chart-day")][0] == f"{today - timedelta(days=29):%m-%d}"


async def test_delivery_health_counts_each_status_with_its_reasons(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    now = utcnow()
    await seed_outbox(sessions, now)
    delivery = parse(await (await log_in("ops")).get("/admin/overview")).one("delivery")
    figures = {name: delivery.one(f"delivery-{name}").all(tag="b")[0].text
               for name in ("pending", "later", "deferred", "held", "failed", "sent")}
    assert figures == {"pending": "0", "later": "2", "deferred": "3", "held": "3", "failed": "2", "sent": "4"}
    reasons = {table.attrs["data-status"]: [row.text for row in table.all("delivery-reason")]
               for table in delivery.all("delivery-reasons")}
    until = (now + timedelta(hours=10)).astimezone(ZONE)
    assert reasons["deferred"] == [f"quiet hours until 11-25 08:30 2 等到 {until:%m-%d %H:%M}",
                                   f"platform asked to wait 1 等到 {(now + timedelta(hours=1)).astimezone(ZONE):%m-%d %H:%M}"]
    assert reasons["held"] == ["member opted out of marketing 3"]
    (failed,) = reasons["failed"]
    assert failed.startswith("HTTP 503 from the platform") and failed.endswith("… 2")
    assert len(failed) < 100  # shortened, the whole error in the cell's title
    assert "retrying" not in reasons


async def test_task_completion_per_store_matches_the_task_arithmetic(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    today, now = local_today(), utcnow()
    facts = await seed_tasks(sessions, console, today, now)
    section = parse(await (await log_in("ops")).get("/admin/overview")).one("task-rates")
    stores = rows_by(section, "store-rates", "data-store")
    assert list(stores) == ["jingan", "xuhui", ""]  # by store code, tasks of no store last

    def shown(row: Node) -> tuple[str, str]:
        return row.one("completion").text, row.one("on-time").text

    def expected(store: str | None | bool) -> tuple[str, str]:
        r = rates([f for s, f in facts if store is True or s == store], today)
        return f"{100 * r.completion:.0f}%", f"{100 * r.on_time_rate:.0f}%"  # type: ignore[operator]

    assert shown(stores["jingan"]) == expected("静安店") == ("67%", "33%")  # 3 due (one not yet), 2 done, 1 on time
    assert shown(stores["xuhui"]) == expected("徐汇店") == ("50%", "50%")  # the harness's overdue revisit
    assert shown(stores[""]) == expected(None) == ("0%", "0%")
    assert shown(section.one("overall-rates")) == expected(True) == ("50%", "33%")
    assert stores["jingan"].all(tag="a")[0].attrs["href"] == f"/admin/staff#store-{console.brand.stores['jingan']}"
    assert "无门店" in stores[""].text


async def test_todays_care_lists_the_occasions_and_the_tasks_due(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    today = local_today()
    await seed_layers(sessions, console, today)
    tasks = await seed_care(sessions, console, today)
    m = console.brand.members
    care = parse(await (await log_in("ops")).get("/admin/overview")).one("care-queue")
    (birthday,) = care.all("care-occasion")
    assert birthday.attrs["data-occasion"] == "birthday"
    cells = {td.attrs["data-action"]: td.text for td in birthday.all(tag="td") if "data-action" in td.attrs}
    assert cells == {"message": "1", "task": "1", "task_for_message": "—", "unreachable": "—", "done": "1"}
    rows = rows_by(care, "care-row", "data-member")
    assert set(rows) == {str(m["王芳"]), str(m["李娜"])}
    gift, message = rows[str(m["王芳"])], rows[str(m["李娜"])]
    assert "超级用户" in gift.text and "店员任务" in gift.text and "已安排" in gift.text  # the scan made it
    assert "核心用户" in message.text and "发消息" in message.text and "待扫描" in message.text
    counts = {badge.attrs["data-kind"]: badge.text for badge in care.all("care-task-count")}
    assert counts == {"care": "关怀礼物 1", "six_moments": "六次触达 1"}
    due = rows_by(care, "care-task", "data-task")
    assert set(due) == {str(tasks["gift"]), str(tasks["moment"])}
    assert "赵雪" in due[str(tasks["moment"])].text and "核心用户" in due[str(tasks["moment"])].text
    assert "周敏" in due[str(tasks["moment"])].text


async def test_a_brand_without_layers_is_told_what_to_run(console: ConsoleServer, log_in: LogIn) -> None:
    page = parse(await (await log_in("ops")).get("/admin/overview"))
    hint = page.one("pyramid").one("pyramid-empty")
    assert "siyu layers recompute" in hint.text
    rows = rows_by(page.one("pyramid"), "pyramid-row", "data-layer")
    assert {layer: row.one("layer-members").text for layer, row in rows.items() if layer != "(none)"} == {
        "super": "0", "core": "0", "important": "0", "dormant": "0", "ordinary": "0"}
    assert rows["(none)"].one("layer-members").text == "3"
    assert all(chart.one("chart-empty") for chart in page.all("chart"))
    assert page.one("care-queue").one("care-empty")
    assert page.one("delivery").one("delivery-empty")


async def test_an_empty_install_renders_every_section_in_english_too(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    async with sessions() as session, session.begin():
        for table in (StaffTask, MemberIdentity, Member, Staff, Store):
            await session.execute(delete(table))
    client = await log_in("ops")
    page = parse(await client.get("/admin/overview"))
    assert "还没有会员" in page.one("pyramid").one("pyramid-empty").text
    assert page.one("task-rates").one("task-rates-empty")
    assert page.one("care-queue").one("care-tasks-empty")
    await client.get("/admin/language/en?next=/admin/overview")
    english = parse(await client.get("/admin/overview"))
    assert "No members yet" in english.one("pyramid").text
    assert "Nothing to deliver lately" in english.one("delivery").text
