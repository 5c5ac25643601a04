"""The 成效 page and the member page's lifetime value, through the running console:
operators see reached against held out with the lift and its interval (or 数据不足),
staff may not open it, and bad dates are said so."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import insert

from storage.engine import SessionFactory
from storage.ltv import save_fit
from storage.models import Member, Order
from storage.outcome_models import LtvScore, OutcomeTouch
from tests.console_harness import ConsoleClient, ConsoleServer

LogIn = Callable[[str], Awaitable[ConsoleClient]]


async def seed_touches(sessions: SessionFactory, console: ConsoleServer, day: date) -> None:
    """A birthday care occasion: 200 members reached, 100 held out; 30 % of the reached
    bought in the week after, 10 % of the held out."""
    from datetime import time

    at = datetime.combine(day, time(2, 0), timezone.utc)
    async with sessions() as session, session.begin():
        ids = []
        for n in range(300):
            member = Member(name=f"会员{n}", store_id=console.brand.stores["jingan"])
            session.add(member)
            await session.flush()
            ids.append(member.id)
        await session.execute(insert(OutcomeTouch), [
            {"member_id": m, "at": at, "source_kind": "occasion", "source_ref": "birthday", "held_out": n >= 200,
             "ref": f"t{n}", "store_id": console.brand.stores["jingan"]} for n, m in enumerate(ids)])
        buyers = ids[:60] + ids[200:210]
        session.add_all(Order(order_no=f"o{m}", member_id=m, amount_cents=6800, ordered_at=at + timedelta(days=2))
                        for m in buyers)
        # A calendar entry with three members: not enough to say anything.
        await session.execute(insert(OutcomeTouch), [
            {"member_id": m, "at": at, "source_kind": "entry", "source_ref": "new-season", "held_out": n == 2,
             "ref": f"e{n}"} for n, m in enumerate(ids[:3])])


async def test_operators_see_the_lift_with_its_interval_and_too_little_data_said_plainly(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    day = date.today() - timedelta(days=10)
    await seed_touches(sessions, console, day)
    ops = await log_in("ops")
    span = f"from={day - timedelta(days=1)}&to={day + timedelta(days=1)}"
    page = await ops.get(f"/admin/outcomes?by=occasion&{span}")
    row = re.search(r'data-testid="outcome-row" data-key="birthday">(.*?)</tr>', page, re.S)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    assert cells[0] == "生日" and cells[1:3] == ["200", "30.0%"] and cells[4:6] == ["100", "10.0%"]
    assert cells[7] == "+20.0%" and re.fullmatch(r"\[\+\d+\.\d%, \+\d+\.\d%\]", cells[8])  # leaves out 0
    entries = await ops.get(f"/admin/outcomes?by=entry&{span}")
    assert 'data-testid="not-enough"' in entries and "数据不足" in entries
    assert "成效" in await ops.get("/admin/overview")  # in the navigation
    english = await ops.get("/admin/language/en?next=/admin/outcomes")
    assert "Outcomes" in english
    await ops.get("/admin/language/zh?next=/admin/outcomes")
    bad = await ops.get("/admin/outcomes?from=someday")
    assert 'data-testid="outcomes-problem"' in bad
    staff = await log_in("liuyang")
    await staff.get("/admin/outcomes", expect=403)


async def test_the_member_page_shows_her_chance_of_still_buying_and_expected_value(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    wangfang = console.brand.members["王芳"]
    async with sessions() as session, session.begin():
        session.add(LtvScore(member_id=wangfang, as_of=date.today(), p_alive=0.83, orders_90d=2.4,
                             clv_90d_cents=21_650.0))
    page = await (await log_in("ops")).get(f"/admin/members/{wangfang}")
    assert re.search(r'data-testid="p-alive">83%<', page)
    assert re.search(r'data-testid="clv">¥216\.50<', page)
    assert re.search(r'data-testid="orders-expected">2\.4<', page)
    assert "未来 90 天预计下单几次" in page and "是估算，不是承诺" in page  # said plainly what it means
    other = await (await log_in("ops")).get(f"/admin/members/{console.brand.members['李娜']}")
    assert 'data-testid="member-ltv"' not in other  # never scored: nothing made up
    assert 'data-testid="ltv-none"' in other and "终身价值还没有算过" in other
    async with sessions() as session, session.begin():
        await save_fit(session, date.today(), 40, {"unit": "week", "horizon_days": 90}, datetime.now(timezone.utc))
    other = await (await log_in("ops")).get(f"/admin/members/{console.brand.members['李娜']}")
    assert "最近一次估算时她还没有订单" in other
