"""The console's member pages through the real server and database: search, who may see
whom, the member's record, and the hand edits (tags, opt-out), including their sync to
WeCom; and the pure helpers behind them."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import select

from bot.console.members_page import page_link, page_number, read_query, readable_metrics, yuan
from bot.settings.model import load_settings
from bot.shared.member_edits import mark_rows
from bot.web.app import build_app
from handlers.care_dates import next_birthday
from handlers.config import HandlerConfig, Persona
from handlers.tag_engine import TagChange
from storage.engine import SessionFactory
from storage.members import mask_phones
from storage.models import (
    Interaction,
    LayerAssignment,
    LayerMove,
    Member,
    MemberIdentity,
    MemberTag,
    Order,
    OutboxEntry,
    SixMomentsTouch,
    Tag,
    utcnow,
)
from storage.tags import apply_tag, ensure_tag, tags_of
from tests.conftest import RunningServer, eventually, start_server, write_config
from tests.console_harness import CONSOLE_CONFIG, PASSWORD, ConsoleClient, ConsoleServer, seed_brand
from tests.fakes.wecom_cloud import FakeWeComCloud
from tests.test_wecom_tag_sync import new_contact
from tests.wecom_harness import Corp, wecom_config

LogIn = Callable[..., Awaitable[ConsoleClient]]
TASTE = "口味偏好"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def rows_of(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-testid="member-row" data-member="(\d+)"', page)]


async def give_tag(sessions: SessionFactory, member_id: int, group: str, name: str, source: str = "rule",
                   ref: str | None = "interest-bread") -> int:
    async with sessions() as session, session.begin():
        tag = await ensure_tag(session, name, group)
        await apply_tag(session, member_id, tag, source, ref, utcnow())
        assert tag.id is not None
        return tag.id


async def stored_tags(sessions: SessionFactory, member_id: int) -> dict[str, tuple[str, str | None]]:
    async with sessions() as session:
        return {t.name: (t.source, t.source_ref) for t in await tags_of(session, member_id)}


async def member(sessions: SessionFactory, member_id: int) -> Member:
    async with sessions() as session:
        found = await session.get(Member, member_id)
    assert found is not None
    return found


# -- search ---------------------------------------------------------------------------------


async def test_an_operator_searches_by_name_phone_tail_and_tag(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    m = console.brand.members
    bread = await give_tag(sessions, m["李娜"], TASTE, "面包控")
    ops = await log_in("ops")

    everyone = await ops.get("/admin/members")
    assert sorted(rows_of(everyone)) == sorted(m.values())
    assert rows_of(everyone)[0] == max(m.values())  # newest first

    assert rows_of(await ops.get("/admin/members?q=王")) == [m["王芳"]]
    assert rows_of(await ops.get("/admin/members?q=5678")) == [m["王芳"]]
    assert rows_of(await ops.get("/admin/members?q=1111")) == [m["李娜"]]
    assert rows_of(await ops.get("/admin/members?q=138")) == []  # a phone's start is not its tail
    by_tag = await ops.get(f"/admin/members?tag={bread}")
    assert rows_of(by_tag) == [m["李娜"]] and "面包控" in by_tag
    assert rows_of(await ops.get("/admin/members?tag=面包控")) == [m["李娜"]]
    assert rows_of(await ops.get(f"/admin/members?tag={bread}&q=王")) == []
    none = await ops.get("/admin/members?q=没有这个人")
    assert rows_of(none) == [] and 'data-testid="no-members"' in none
    assert rows_of(await ops.get("/admin/members?q=%25")) == []  # LIKE wildcards are literal

    # The phone is masked in the table, and the opt-out shows.
    async with sessions() as session, session.begin():
        found = await session.get(Member, m["王芳"])
        assert found is not None
        found.opted_out_at = utcnow()
    listed = await ops.get("/admin/members?q=王芳")
    assert "138****5678" in listed and "13800135678" not in listed
    assert 'data-testid="opted-out-badge"' in listed


async def test_results_come_fifty_a_page(console: ConsoleServer, log_in: LogIn, sessions: SessionFactory) -> None:
    async with sessions() as session, session.begin():
        session.add_all([Member(name=f"会员{n:03d}", phone=f"1500000{n:04d}") for n in range(60)])
    ops = await log_in("ops")
    first = await ops.get("/admin/members?q=会员")
    second = await ops.get("/admin/members?q=会员&page=2")
    assert len(rows_of(first)) == 50 and len(rows_of(second)) == 10
    assert not set(rows_of(first)) & set(rows_of(second))
    assert rows_of(first) == sorted(rows_of(first), reverse=True)
    assert 'href="/admin/members?q=%E4%BC%9A%E5%91%98&amp;page=2"' in first  # the next page keeps the search
    assert 'data-testid="page-next"' not in second and 'data-testid="page-previous"' in second


# -- who sees whom --------------------------------------------------------------------------


async def test_staff_see_their_members_managers_their_store_and_nobody_elses(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    m = console.brand.members
    async with sessions() as session, session.begin():
        unowned = Member(name="孙丽", phone="13600003333", store_id=console.brand.stores["jingan"])
        session.add(unowned)
        await session.flush()
        assert unowned.id is not None
        sunli = unowned.id

    liuyang = await log_in("liuyang")
    assert sorted(rows_of(await liuyang.get("/admin/members"))) == sorted([m["王芳"], m["李娜"]])
    assert rows_of(await liuyang.get("/admin/members?q=赵雪")) == []
    assert "王芳" in await liuyang.get(f"/admin/members/{m['王芳']}")
    refused = await liuyang.get(f"/admin/members/{m['赵雪']}", expect=404)
    assert "赵雪" not in refused and "13700002222" not in refused
    await liuyang.get(f"/admin/members/{sunli}", expect=404)  # her store, not hers: 刘洋 is no manager
    await liuyang.post(f"/admin/members/{m['赵雪']}/tags", {"name": "偷偷加的", "group": ""}, expect=404)
    await liuyang.post(f"/admin/members/{m['赵雪']}/tags/remove", {"name": "x", "group": ""}, expect=404)
    assert await stored_tags(sessions, m["赵雪"]) == {}
    async with sessions() as session:
        assert (await session.execute(select(Tag).where(Tag.name == "偷偷加的"))).first() is None

    chenjing = await log_in("chenjing")  # manages 静安店
    assert sorted(rows_of(await chenjing.get("/admin/members"))) == sorted([m["王芳"], m["李娜"], sunli])
    assert "孙丽" in await chenjing.get(f"/admin/members/{sunli}")
    await chenjing.get(f"/admin/members/{m['赵雪']}", expect=404)

    zhoumin = await log_in("zhoumin")
    assert rows_of(await zhoumin.get("/admin/members")) == [m["赵雪"]]
    await zhoumin.get(f"/admin/members/{m['王芳']}", expect=404)
    await zhoumin.get("/admin/members/999999", expect=404)


# -- the member's record --------------------------------------------------------------------


async def seed_record(sessions: SessionFactory, console: ConsoleServer) -> dict[str, int]:
    """王芳's year: a rule tag, layers and a move, messages, orders, a six-moments plan."""
    wangfang = console.brand.members["王芳"]
    now = utcnow()
    await give_tag(sessions, wangfang, TASTE, "面包控")
    async with sessions() as session, session.begin():
        session.add(LayerAssignment(member_id=wangfang, scheme="value", layer="super", assigned_at=now, metrics=json.dumps(
            {"frequency": 7, "monetary_cents": 1288800, "r_score": 5, "f_score": 5, "m_score": 4, "paid_member": True,
             "referrals": 0, "last_order_at": "2025-03-01T02:00:00+00:00", "interactions_30d": 12})))
        session.add_all([
            LayerMove(member_id=wangfang, scheme="value", from_layer=None, to_layer="ordinary", moved_at=now - timedelta(days=90)),
            LayerMove(member_id=wangfang, scheme="value", from_layer="ordinary", to_layer="super", moved_at=now - timedelta(days=2)),
        ])
        session.add_all([
            Interaction(member_id=wangfang, kind="message_in", platform="sandbox", at=now - timedelta(hours=2),
                        text="想订一个全麦吐司，电话 13912345678"),
            Interaction(member_id=wangfang, kind="message_out", platform="sandbox", at=now - timedelta(hours=1),
                        text="好的王芳姐，已经帮您留好了"),
        ])
        session.add_all([
            Order(order_no="A-1001", member_id=wangfang, amount_cents=12800, ordered_at=now - timedelta(days=10)),
            Order(order_no="A-1002", member_id=wangfang, amount_cents=7250, ordered_at=now - timedelta(days=3)),
        ])
        session.add_all([
            SixMomentsTouch(member_id=wangfang, year=now.year, slot=1, kind="birthday", due_date=date(now.year, 3, 14),
                            label="生日", task_id=console.brand.tasks["birthday"]),
            SixMomentsTouch(member_id=wangfang, year=now.year, slot=2, kind="festival", due_date=date(now.year, 9, 20),
                            label="中秋节"),
        ])
    return {"wangfang": wangfang}


async def test_the_member_page_shows_why_she_has_each_tag_her_layers_timeline_orders_and_plans(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    wangfang = (await seed_record(sessions, console))["wangfang"]
    page = await (await log_in("liuyang")).get(f"/admin/members/{wangfang}")

    # Profile, masked.
    assert "138****5678" in page and "13800135678" not in page
    assert "静安店" in page and "刘洋" in page and "公历" in page and "3月14日" in page
    # Tags and why: the rule that gave it.
    row = re.search(r'<tr data-testid="tag-row" data-tag="面包控" data-source="rule">(.*?)</tr>', page, re.S)
    assert row is not None and TASTE in row.group(1) and "规则" in row.group(1)
    assert "含任一关键词：" in row.group(1) and 'title="interest-bread"' in row.group(1)  # in words; the id behind
    # Layers: the current one with its metrics made readable, and the history.
    assert "价值分层" in page and "超级用户" in page
    assert "¥12,888.00" in page and "近 30 天互动" in page
    assert len(re.findall(r'data-testid="layer-move"', page)) == 2 and "普通用户 → 超级用户" in page
    # Timeline newest first, with the number she wrote masked.
    timeline = page[page.index('data-testid="member-timeline"'):]
    assert timeline.index("已经帮您留好了") < timeline.index("全麦吐司")
    assert "139****5678" in page and "13912345678" not in page
    # Orders with the total.
    assert "共 2 单，合计 ¥200.50" in page and "A-1002" in page and "¥72.50" in page
    # Six moments, with the touch's task; next care days; open tasks.
    plan = page[page.index('data-testid="member-six-moments"'):page.index('data-testid="member-tasks"')]
    assert "中秋节" in plan and f'href="/admin/tasks/{console.brand.tasks["birthday"]}"' in plan
    birthday = next_birthday(3, 14, "solar", False, datetime.now(SHANGHAI).date())
    assert birthday is not None
    assert re.search(rf'data-testid="care-birthday">{birthday:%Y-%m-%d}', page)
    tasks = page[page.index('data-testid="member-tasks"'):]
    assert "王芳 生日：送一束花" in tasks


async def test_the_timeline_shows_fifty_and_pages_on_to_older_ones(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    lina = console.brand.members["李娜"]
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    async with sessions() as session, session.begin():
        session.add_all([Interaction(member_id=lina, kind="message_in", platform="sandbox",
                                     at=start + timedelta(minutes=n), text=f"第{n}条消息。") for n in range(55)])
    ops = await log_in("ops")
    page = await ops.get(f"/admin/members/{lina}")
    assert len(re.findall(r'data-testid="timeline-row"', page)) == 50
    assert "第54条消息。" in page and "第5条消息。" in page and "第4条消息。" not in page
    more = re.search(r'href="([^"]+)" data-testid="timeline-more"', page)
    assert more is not None
    older = await ops.get(more.group(1).replace("&amp;", "&"))
    assert len(re.findall(r'data-testid="timeline-row"', older)) == 5
    assert "第4条消息。" in older and "第0条消息。" in older and "第5条消息。" not in older


async def test_the_page_reads_in_english_too(console: ConsoleServer, log_in: LogIn) -> None:
    ops = await log_in("ops")
    page = await ops.get(f"/admin/language/en?next=/admin/members/{console.brand.members['王芳']}")
    assert "Tags and why" in page and "Layer history" in page and "Record the member&#39;s opt-out" in page


# -- hand edits -----------------------------------------------------------------------------


async def test_staff_add_and_remove_tags_recorded_as_staff(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    m = console.brand.members
    await give_tag(sessions, m["李娜"], TASTE, "面包控")
    before = (await member(sessions, m["王芳"])).updated_at
    liuyang = await log_in("liuyang")

    # An existing tag, named alone: the one in its group, not a new ungrouped twin.
    page = await liuyang.post(f"/admin/members/{m['王芳']}/tags", {"name": "面包控", "group": ""})
    assert "标签已加上" in page
    # A new tag in a new group.
    await liuyang.post(f"/admin/members/{m['王芳']}/tags", {"name": "爱喝咖啡", "group": "饮品"})
    assert await stored_tags(sessions, m["王芳"]) == {"面包控": ("staff", "liuyang"), "爱喝咖啡": ("staff", "liuyang")}
    async with sessions() as session:
        assert len((await session.execute(select(Tag).where(Tag.name == "面包控"))).all()) == 1
    shown = await liuyang.get(f"/admin/members/{m['王芳']}")
    assert re.search(r'data-tag="爱喝咖啡" data-source="staff">.*?饮品.*?liuyang', shown, re.S)

    # A rule's tag confirmed by a person becomes hers to keep (staff, no lapse).
    await liuyang.post(f"/admin/members/{m['李娜']}/tags", {"name": "面包控", "group": TASTE})
    assert await stored_tags(sessions, m["李娜"]) == {"面包控": ("staff", "liuyang")}

    # Removed: gone from her, and the member marked changed for the next layer run.
    await liuyang.post(f"/admin/members/{m['王芳']}/tags/remove", {"name": "爱喝咖啡", "group": "饮品"})
    assert await stored_tags(sessions, m["王芳"]) == {"面包控": ("staff", "liuyang")}
    assert (await member(sessions, m["王芳"])).updated_at > before

    # An operator's edit names the operator.
    await (await log_in("ops")).post(f"/admin/members/{m['赵雪']}/tags", {"name": "合伙人", "group": ""})
    assert await stored_tags(sessions, m["赵雪"]) == {"合伙人": ("staff", "operator:ops")}

    # No name: refused with a reason, nothing stored.
    refused = await liuyang.post(f"/admin/members/{m['王芳']}/tags", {"name": " ", "group": ""}, expect=400)
    assert "标签名必填" in refused


async def test_an_operator_records_and_clears_an_opt_out(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    wangfang = console.brand.members["王芳"]
    liuyang = await log_in("liuyang")
    assert 'data-testid="opt-out-form"' not in await liuyang.get(f"/admin/members/{wangfang}")
    await liuyang.post(f"/admin/members/{wangfang}/opt-out", {"action": "record"}, expect=403)
    assert (await member(sessions, wangfang)).opted_out_at is None

    ops = await log_in("ops")
    page = await ops.post(f"/admin/members/{wangfang}/opt-out", {"action": "record"})
    assert "已记下会员的退订" in page and 'data-testid="opt-out-clear"' in page
    recorded = (await member(sessions, wangfang)).opted_out_at
    assert recorded is not None and utcnow() - recorded < timedelta(minutes=5)
    # Recording again keeps the first time.
    await ops.post(f"/admin/members/{wangfang}/opt-out", {"action": "record"})
    assert (await member(sessions, wangfang)).opted_out_at == recorded

    page = await ops.post(f"/admin/members/{wangfang}/opt-out", {"action": "clear"})
    assert "已取消退订" in page and 'data-testid="opt-out-record"' in page
    assert (await member(sessions, wangfang)).opted_out_at is None


async def test_a_form_without_the_csrf_token_changes_nothing(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    wangfang = console.brand.members["王芳"]
    tag = await give_tag(sessions, wangfang, TASTE, "面包控")
    ops = await log_in("ops")
    path = f"/admin/members/{wangfang}"
    await ops.post(f"{path}/tags", {"name": "伪造", "group": ""}, expect=403, csrf=False)
    await ops.post(f"{path}/tags/remove", {"name": "面包控", "group": TASTE, "csrf": "guessed"}, expect=403, csrf=False)
    await ops.post(f"{path}/opt-out", {"action": "record"}, expect=403, csrf=False)
    assert await stored_tags(sessions, wangfang) == {"面包控": ("rule", "interest-bread")}
    assert (await member(sessions, wangfang)).opted_out_at is None
    async with sessions() as session:
        assert (await session.get(MemberTag, (wangfang, tag))) is not None
        assert (await session.execute(select(Tag).where(Tag.name == "伪造"))).first() is None


# -- WeCom stays in step ----------------------------------------------------------------------

SYNC_GROUP = "私域同步"
ALICE = "wmAJ2GCAAAXtWyujaWJHDDGi0mCCCC"
OPT_OUT_RULE = """
[[tags.rules]]
id = "said-stop"
kind = "event"
event = "opted_out"
tag = "已退订"
group = "状态"
"""


@pytest.fixture
async def synced_console(
    cloud: FakeWeComCloud, db_url: str, tmp_path: Path, http: aiohttp.ClientSession, sessions: SessionFactory
) -> AsyncIterator[Corp]:
    """The console on a server whose tags follow WeCom's, with an opt-out tag rule."""
    config = OPT_OUT_RULE + CONSOLE_CONFIG + wecom_config(cloud.base_url, tag_sync_group=SYNC_GROUP)
    await seed_brand(sessions)
    running: RunningServer = await start_server(build_app(load_settings(write_config(tmp_path, db_url, config))), http)
    yield Corp(cloud, running, sessions)
    await running.stop()


async def signed_in(base: str, http: aiohttp.ClientSession, login: str) -> ConsoleClient:
    client = ConsoleClient(base, http)
    token = re.search(r'name="csrf-token" content="([^"]+)"', await client.get("/admin/login"))
    assert token
    async with http.post(base + "/admin/login", data={"login": login, "password": PASSWORD, "csrf": token.group(1)}) as r:
        assert r.status == 200 and r.url.path != "/admin/login"
    return client


async def test_console_tag_edits_and_a_recorded_opt_out_reach_wecom(synced_console: Corp) -> None:
    cloud = synced_console.cloud
    alice = await new_contact(synced_console, ALICE, "周琳", "zhangsan")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        ops = await signed_in(synced_console.server.base, http, "ops")

        await ops.post(f"/admin/members/{alice}/tags", {"name": "面包控", "group": TASTE})

        async def marked() -> bool:
            corp_tag = cloud.tag_id(SYNC_GROUP, "面包控")
            return corp_tag is not None and corp_tag in cloud.follow_tags("zhangsan", ALICE)

        await eventually(marked)
        corp_tag = cloud.tag_id(SYNC_GROUP, "面包控")

        await ops.post(f"/admin/members/{alice}/tags/remove", {"name": "面包控", "group": TASTE})
        await eventually(lambda: _async(corp_tag not in cloud.follow_tags("zhangsan", ALICE)))

        # The opt-out as the handler records it: the time, the event rule's tag, its sync.
        await ops.post(f"/admin/members/{alice}/opt-out", {"action": "record"})
        assert await stored_tags(synced_console.sessions, alice) == {"已退订": ("rule", "said-stop")}

        async def opt_out_marked() -> bool:
            stopped = cloud.tag_id(SYNC_GROUP, "已退订")
            return stopped is not None and stopped in cloud.follow_tags("zhangsan", ALICE)

        await eventually(opt_out_marked)
    async with synced_console.sessions() as session:
        rows = (await session.execute(select(OutboxEntry).where(OutboxEntry.route == "mark_tag"))).scalars().all()
    assert [json.loads(r.meta) for r in rows] == [
        {"add": [[TASTE, "面包控"]], "remove": []},
        {"add": [], "remove": [[TASTE, "面包控"]]},
        {"add": [["状态", "已退订"]], "remove": []},
    ]


async def _async(value: bool) -> bool:
    return value


# -- pure helpers -----------------------------------------------------------------------------


def test_a_query_of_digits_is_a_phone_tail_and_anything_else_a_name() -> None:
    assert read_query(" 5678 ").phone_tail == "5678" and not read_query("5678").name
    assert read_query("138-0013").phone_tail == "1380013"
    assert read_query("王芳").name == "王芳" and not read_query("王芳").phone_tail
    assert read_query("王5678").name == "王5678"


def test_pages_and_links() -> None:
    assert [page_number(raw) for raw in (None, "", "0", "-2", "x", "3", "99999999")] == [1, 1, 1, 1, 1, 3, 10_000]
    assert page_link("", "", 1) == "/admin/members"
    assert page_link("王", "7", 2) == "/admin/members?q=%E7%8E%8B&tag=7&page=2"


def test_phone_numbers_in_free_text_are_masked() -> None:
    assert mask_phones("电话13912345678，谢谢") == "电话139****5678，谢谢"
    assert mask_phones("订单 2139123456789 不是手机") == "订单 2139123456789 不是手机"
    assert mask_phones("座机 021-5555 6666", "021-5555 6666") == "座机 021******6666"
    assert mask_phones(None) == ""


def test_metrics_read_as_people_read_them() -> None:
    shown = readable_metrics({"monetary_cents": 1288850, "paid_member": False, "r_score": None, "interactions_7d": 3,
                              "last_order_at": "2025-03-01 17:30:00+00:00", "custom": 2}, SHANGHAI)
    assert [(m.label, m.fields, m.value, m.words) for m in shown] == [
        ("窗口内消费", {}, "¥12,888.50", False),
        ("付费会员", {}, "否", True),
        ("近度分 R", {}, "—", False),
        ("近 {n} 天互动", {"n": 7}, "3", False),
        ("最近下单", {}, "2025-03-02", False),  # 01:30 the next day in Shanghai
        ("custom", {}, "2", False),
    ]
    assert yuan(0) == "¥0.00" and yuan(-150) == "¥-1.50"


def test_a_tag_change_becomes_a_mark_tag_row_only_where_tags_are_synced() -> None:
    persona = Persona(name="小禾", title="", signature="")
    identities = [MemberIdentity(member_id=5, platform="wecom", external_id="wmX"),
                  MemberIdentity(member_id=5, platform="sandbox", external_id="王芳")]
    change = TagChange(added=[(TASTE, "面包控")], removed=[("状态", "沉睡")])
    (row,) = mark_rows(HandlerConfig(persona=persona, sync_tags_on=frozenset({"wecom"})), 5, identities, change)
    assert (row.platform, row.recipient, row.route, row.kind, row.member_id) == ("wecom", "wmX", "mark_tag", "request", 5)
    assert json.loads(row.meta) == {"add": [[TASTE, "面包控"]], "remove": [["状态", "沉睡"]]}
    assert mark_rows(HandlerConfig(persona=persona), 5, identities, change) == []
    assert mark_rows(HandlerConfig(persona=persona, sync_tags_on=frozenset({"wecom"})), 5, identities, TagChange()) == []


GRADES = """
[[tags.groups]]
name = "意向等级"
exclusive = true

[[tags.rules]]
id = "grade-a"
tag = "A级意向"
group = "意向等级"
keywords = ["今天就要"]

[[tags.rules]]
id = "grade-c"
tag = "C级意向"
group = "意向等级"
keywords = ["随便看看"]

[[tags.rules]]
id = "unsubscribed"
kind = "event"
event = "opted_out"
tag = "已退订"
"""


@pytest.fixture
async def graded_console(db_url: str, tmp_path: Path, http: aiohttp.ClientSession,
                         sessions: SessionFactory) -> AsyncIterator[ConsoleServer]:
    brand = await seed_brand(sessions)
    running = await start_server(build_app(load_settings(write_config(tmp_path, db_url, GRADES + CONSOLE_CONFIG))), http)
    yield ConsoleServer(running, brand)
    await running.stop()


async def test_a_hand_tag_typed_without_its_group_keeps_the_exclusive_group(
    graded_console: ConsoleServer, sessions: SessionFactory, http: aiohttp.ClientSession
) -> None:
    wangfang = graded_console.brand.members["王芳"]
    await give_tag(sessions, wangfang, "意向等级", "A级意向", ref="grade-a")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as own:
        ops = await signed_in(graded_console.base, own, "ops")
        await ops.post(f"/admin/members/{wangfang}/tags", {"name": "C级意向", "group": ""})
    assert set(await stored_tags(sessions, wangfang)) == {"C级意向"}  # the new grade replaced the old


async def test_clearing_an_opt_out_in_the_console_takes_the_opt_out_tag_off(
    graded_console: ConsoleServer, sessions: SessionFactory
) -> None:
    wangfang = graded_console.brand.members["王芳"]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as own:
        ops = await signed_in(graded_console.base, own, "ops")
        await ops.post(f"/admin/members/{wangfang}/opt-out", {"action": "record"})
        assert "已退订" in await stored_tags(sessions, wangfang)
        await ops.post(f"/admin/members/{wangfang}/opt-out", {"action": "clear"})
    assert "已退订" not in await stored_tags(sessions, wangfang)
    assert (await member(sessions, wangfang)).opted_out_at is None
