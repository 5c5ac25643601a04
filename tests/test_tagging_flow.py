"""Tag rules end to end: sandbox messages and events in, member tags (with their source),
tag groups, interest scores and the daily sweep out — on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select, update

from bot.settings.handlers import handler_config
from bot.settings.model import load_settings
from bot.web.app import build_app
from scheduler.tag_sweep import sweep_tags
from storage.engine import SessionFactory
from storage.members import member_by_identity
from storage.models import InboxEntry, Interaction, MemberTag, Order, Tag, utcnow
from storage.tags import apply_tag, ensure_tag, interests_of, tags_of
from tests.conftest import RunningServer, eventually, start_server, write_config

RULES = """
[[tags.groups]]
name = "意向等级"
exclusive = true

[[tags.groups]]
name = "口味偏好"
expire_days = 30

[[tags.rules]]
id = "grade-s"
tag = "S"
group = "意向等级"
keywords = ["今天就要", "马上买"]

[[tags.rules]]
id = "grade-b"
tag = "B"
group = "意向等级"
keywords = ["看看", "随便问问"]

[[tags.rules]]
id = "budget"
kind = "regex"
tag = "有预算"
pattern = '预算\\s*\\d+'

[[tags.rules]]
id = "cake"
tag = "蛋糕控"
group = "口味偏好"
keywords = ["蛋糕"]
weight = 3
topic = "烘焙"

[[tags.rules]]
id = "chatty"
kind = "behaviour"
measure = "messages"
count = 3
days = 7
tag = "高互动"
group = "活跃度"

[[tags.rules]]
id = "asleep"
kind = "behaviour"
measure = "silent"
days = 60
tag = "沉睡"
group = "活跃度"

[[tags.rules]]
id = "unsubscribed"
kind = "event"
event = "opted_out"
tag = "已退订"

[[tags.rules]]
id = "jingan-buyer"
kind = "event"
event = "placed_order"
subject = "jingan"
tag = "静安门店客户"
"""


@pytest.fixture
def config_path(db_url: str, tmp_path: Path) -> Path:
    return write_config(tmp_path, db_url, RULES)


@pytest.fixture
async def tagged(config_path: Path, http: aiohttp.ClientSession) -> AsyncIterator[RunningServer]:
    running = await start_server(build_app(load_settings(config_path)), http)
    yield running
    await running.stop()


async def all_handled(sessions: SessionFactory) -> None:
    async def done() -> bool:
        async with sessions() as session:
            waiting = select(func.count()).select_from(InboxEntry).where(InboxEntry.status != "done")
            return (await session.execute(waiting)).scalar_one() == 0

    await eventually(done)


async def say(server: RunningServer, sessions: SessionFactory, member: str, *texts: str) -> None:
    for text in texts:
        await server.post_message(member, text)
        await all_handled(sessions)


async def tags(sessions: SessionFactory, member: str) -> dict[str, tuple[str, str | None, int]]:
    async with sessions() as session:
        found = await member_by_identity(session, "sandbox", member)
        assert found is not None and found.id is not None
        return {t.name: (t.source, t.source_ref, t.hit_count) for t in await tags_of(session, found.id)}


async def test_keyword_and_regex_rules_tag_with_their_source_and_weights_add_up(
    tagged: RunningServer, sessions: SessionFactory
) -> None:
    await say(tagged, sessions, "王芳", "預算 ３００ 想訂生日蛋糕")  # traditional and full-width
    assert await tags(sessions, "王芳") == {"有预算": ("rule", "budget", 1), "蛋糕控": ("rule", "cake", 1)}
    await say(tagged, sessions, "王芳", "蛋糕要动物奶油的")
    assert (await tags(sessions, "王芳"))["蛋糕控"] == ("rule", "cake", 2)
    async with sessions() as session:
        member = await member_by_identity(session, "sandbox", "王芳")
        assert member is not None and member.id is not None
        assert await interests_of(session, member.id) == {"烘焙": 6}


async def test_a_new_grade_replaces_the_old_and_the_first_rule_wins_a_conflict(
    tagged: RunningServer, sessions: SessionFactory
) -> None:
    await say(tagged, sessions, "李娜", "随便问问")
    assert "B" in await tags(sessions, "李娜")
    await say(tagged, sessions, "李娜", "想好了，今天就要")
    grades = {name for name in await tags(sessions, "李娜") if name in ("S", "A", "B", "C")}
    assert grades == {"S"}
    # Both grades' words in one message: the rule listed first (S) decides.
    await say(tagged, sessions, "赵敏", "先看看，不过今天就要")
    assert {n for n in await tags(sessions, "赵敏") if n in ("S", "B")} == {"S"}


async def test_the_third_message_in_a_week_makes_a_member_chatty(
    tagged: RunningServer, sessions: SessionFactory
) -> None:
    await say(tagged, sessions, "周洁", "你好", "在吗")
    assert "高互动" not in await tags(sessions, "周洁")
    await say(tagged, sessions, "周洁", "谢谢")
    assert (await tags(sessions, "周洁"))["高互动"] == ("rule", "chatty", 1)


async def test_opting_out_and_an_order_at_the_named_store_fire_event_rules(
    tagged: RunningServer, sessions: SessionFactory
) -> None:
    await say(tagged, sessions, "孙丽", "退订")
    assert (await tags(sessions, "孙丽"))["已退订"] == ("rule", "unsubscribed", 1)

    async def order(number: str, store: str) -> None:
        body = {"member": "孙丽", "order_no": number, "amount": 38.5, "store": store}
        async with tagged.client.post(f"{tagged.base}/sandbox/orders", json=body) as response:
            assert response.status == 202, await response.text()
        await all_handled(sessions)

    await order("A-1", "xuhui")
    assert "静安门店客户" not in await tags(sessions, "孙丽")
    await order("A-2", "jingan")
    await order("A-2", "jingan")  # the same order again counts once
    assert (await tags(sessions, "孙丽"))["静安门店客户"] == ("rule", "jingan-buyer", 1)

    async with sessions() as session:
        orders = (await session.execute(select(Order.order_no, Order.amount_cents))).all()
    assert sorted(orders) == [("A-1", 3850), ("A-2", 3850)]


async def test_the_sweep_lapses_old_rule_tags_and_tags_the_silent_until_they_write(
    tagged: RunningServer, sessions: SessionFactory, config_path: Path
) -> None:
    await say(tagged, sessions, "吴静", "想订蛋糕")
    await say(tagged, sessions, "郑红", "你好")
    now = utcnow()
    async with sessions() as session, session.begin():
        wu = await member_by_identity(session, "sandbox", "吴静")
        zheng = await member_by_identity(session, "sandbox", "郑红")
        assert wu is not None and wu.id is not None and zheng is not None and zheng.id is not None
        # 吴静's cake tag was last hit 31 days ago; staff also noted 面包控 for her back then.
        bread = await ensure_tag(session, "面包控", "口味偏好")
        await apply_tag(session, wu.id, bread, "staff", "zhangsan", now - timedelta(days=31))
        await session.execute(
            update(MemberTag).where(MemberTag.member_id == wu.id).values(last_seen=now - timedelta(days=31))
        )
        # 郑红 last wrote 61 days ago.
        await session.execute(
            update(Interaction).where(Interaction.member_id == zheng.id).values(at=now - timedelta(days=61))
        )
        await session.execute(update(type(zheng)).where(type(zheng).id == zheng.id).values(
            created_at=now - timedelta(days=90)))

    async with sessions() as session, session.begin():
        await session.execute(update(type(wu)).values(updated_at=now - timedelta(days=1)))
    report = await sweep_tags(sessions, handler_config(load_settings(config_path)), now)

    assert report.lapsed == 1
    assert set(await tags(sessions, "吴静")) == {"面包控"}  # the staff's tag stays
    async with sessions() as session:
        changed = {m.name: m.updated_at.replace(tzinfo=None) for m in (await session.execute(select(type(wu)))).scalars()}
    # The lapse counts as a change: the next incremental layer run looks at her again.
    assert changed["吴静"] == now.replace(tzinfo=None) and changed["郑红"] < now.replace(tzinfo=None)
    assert (await tags(sessions, "郑红"))["沉睡"] == ("rule", "asleep", 1)
    assert "沉睡" not in await tags(sessions, "吴静")  # she wrote today
    again = await sweep_tags(sessions, handler_config(load_settings(config_path)), now)
    assert again.silent_tagged == 0 and again.lapsed == 0

    await say(tagged, sessions, "郑红", "好久不见")
    assert "沉睡" not in await tags(sessions, "郑红")
    async with sessions() as session:
        assert (await session.execute(select(Tag).where(Tag.name == "沉睡"))).scalars().one()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"member": "孙丽", "amount": 10}, '"order_no" is required'),
        ({"member": "孙丽", "order_no": "A 1", "amount": 10}, '"order_no" is required'),
        ({"member": "孙丽", "order_no": "A-1", "amount": -1}, "non-negative"),
        ({"member": "孙丽", "order_no": "A-1", "amount": 1.234}, "two decimals"),
        ({"member": "孙丽", "order_no": "A-1", "amount": "lots"}, "number of yuan"),
        ({"order_no": "A-1", "amount": 1}, '"member" is required'),
    ],
)
async def test_a_bad_sandbox_order_is_refused_and_nothing_is_stored(
    tagged: RunningServer, sessions: SessionFactory, body: dict, problem: str
) -> None:
    async with tagged.client.post(f"{tagged.base}/sandbox/orders", json=body) as response:
        assert response.status == 400 and problem in (await response.json())["error"]
    async with sessions() as session:
        assert (await session.execute(select(func.count()).select_from(InboxEntry))).scalar_one() == 0


async def test_re_subscribing_takes_the_opt_out_tag_off_again(tagged: RunningServer, sessions: SessionFactory) -> None:
    await say(tagged, sessions, "孙丽", "退订")
    assert "已退订" in await tags(sessions, "孙丽")
    await say(tagged, sessions, "孙丽", "订阅")
    assert "已退订" not in await tags(sessions, "孙丽")  # an audience excluding 已退订 reaches her again
    async with sessions() as session:
        found = await member_by_identity(session, "sandbox", "孙丽")
    assert found is not None and found.opted_out_at is None


async def test_an_order_number_posted_again_with_another_amount_is_refused_out_loud(
    tagged: RunningServer, sessions: SessionFactory
) -> None:
    async def post(amount: float) -> tuple[int, dict]:
        body = {"member": "孙丽", "order_no": "A-9", "amount": amount}
        async with tagged.client.post(f"{tagged.base}/sandbox/orders", json=body) as response:
            return response.status, await response.json()

    assert (await post(38.5))[0] == 202
    await all_handled(sessions)
    assert (await post(38.5))[0] == 202  # the same order again: harmless
    status, answer = await post(99)
    assert status == 409 and "38.50" in answer["error"] and "new order number" in answer["error"]
    async with sessions() as session:
        assert (await session.execute(select(Order.order_no, Order.amount_cents))).all() == [("A-9", 3850)]
