"""The console's bulk transfer to a colleague, for WeCom customers: WeCom's 在职继承
(`externalcontact/transfer_customer`) is called through the outbox, at most 100
customers a call; WeCom's answer for each customer shows in the members page's action
log; she moves in our records when WeCom moves her (its contact callbacks)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from bot.settings.model import load_settings
from bot.web.app import build_app
from storage.engine import SessionFactory
from storage.models import Member, MemberIdentity, OutboxEntry, Staff, StaffTask, utcnow
from tests.conftest import RunningServer, eventually, start_server, write_config
from tests.console_harness import CONSOLE_CONFIG, PASSWORD, ConsoleClient
from tests.fakes.wecom_cloud import FakeWeComCloud
from tests.wecom_harness import Corp, contact_event, wecom_config

TRANSFER = "/cgi-bin/externalcontact/transfer_customer"
ALICE, BOB, CAROL = "wmTransferAlice0001", "wmTransferBob00002", "wmTransferCarol003"


@pytest.fixture
async def served(cloud: FakeWeComCloud, db_url: str, tmp_path: Path, http: aiohttp.ClientSession,
                 sessions: SessionFactory) -> AsyncIterator[RunningServer]:
    settings = load_settings(write_config(tmp_path, db_url, wecom_config(cloud.base_url) + CONSOLE_CONFIG))
    running = await start_server(build_app(settings), http)
    yield running
    await running.stop()


@pytest.fixture
async def ops(served: RunningServer) -> AsyncIterator[ConsoleClient]:
    """An operator signed in to the console (a cookie jar of its own)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        client = ConsoleClient(served.base, http)
        token = re.search(r'name="csrf-token" content="([^"]+)"', await client.get("/admin/login"))
        assert token
        async with http.post(served.base + "/admin/login", data={"login": "ops", "password": PASSWORD,
                                                                  "csrf": token.group(1), "next": ""}) as response:
            assert response.status == 200 and response.url.path != "/admin/login"
        yield client


async def seed(sessions: SessionFactory, customers: dict[str, str], sandbox: tuple[str, ...] = ()) -> dict[str, int]:
    """Staff zhangsan and lisi; members (WeCom customers by external_userid, and sandbox
    members by name) all zhangsan's, each with an open task."""
    async with sessions() as session, session.begin():
        zhangsan, lisi = Staff(userid="zhangsan", name="张三"), Staff(userid="lisi", name="李四")
        session.add_all([zhangsan, lisi])
        await session.flush()
        ids: dict[str, int] = {"zhangsan": zhangsan.id, "lisi": lisi.id}  # type: ignore[dict-item]
        for key, name in [*customers.items(), *((n, n) for n in sandbox)]:
            found = Member(name=name, owner_staff_id=zhangsan.id)
            session.add(found)
            await session.flush()
            assert found.id is not None
            platform = "sandbox" if key in sandbox else "wecom"
            session.add(MemberIdentity(member_id=found.id, platform=platform, external_id=key))
            session.add(StaffTask(dedupe_key=f"t:{key}", staff_id=zhangsan.id, member_id=found.id, kind="care",
                                  title=f"{name} 回访", due_date=utcnow().date()))
            ids[key] = found.id
    return ids


async def owner_of(sessions: SessionFactory, member_id: int) -> int | None:
    async with sessions() as session:
        found = await session.get(Member, member_id)
        return found.owner_staff_id if found is not None else None


async def transfers_answered(sessions: SessionFactory) -> bool:
    async with sessions() as session:
        rows = (await session.execute(select(OutboxEntry).where(OutboxEntry.route == "transfer_customer"))).scalars().all()
    return bool(rows) and all(r.status in ("sent", "failed") for r in rows)


async def test_a_bulk_transfer_asks_wecom_and_shows_what_it_refused(
    served: RunningServer, cloud: FakeWeComCloud, sessions: SessionFactory, ops: ConsoleClient
) -> None:
    cloud.add_contact("zhangsan", ALICE, "王芳")
    cloud.add_contact("wangwu", BOB, "李娜")  # in WeCom she is another colleague's customer
    ids = await seed(sessions, {ALICE: "王芳", BOB: "李娜", CAROL: "赵雪"}, sandbox=("孙丽",))  # 赵雪: unknown to WeCom
    page = await ops.post("/admin/members/bulk", {
        "action": "transfer", "staff": "lisi", "transfer_message": "您好，之后由李四为您服务。",
        "member": [str(ids[k]) for k in (ALICE, BOB, CAROL, "孙丽")],  # type: ignore[dict-item]
    })
    assert "已把 1 位会员转给新的负责店员" in page  # the sandbox member, at once
    assert "已向企业微信提交 3 位客户的转接" in page
    assert await owner_of(sessions, ids["孙丽"]) == ids["lisi"]
    for key in (ALICE, BOB, CAROL):  # WeCom's customers stay with zhangsan until WeCom moves them
        assert await owner_of(sessions, ids[key]) == ids["zhangsan"]

    await eventually(lambda: transfers_answered(sessions))
    (call,) = cloud.calls_to(TRANSFER)
    assert call.json == {"handover_userid": "zhangsan", "takeover_userid": "lisi",
                         "external_userid": [ALICE, BOB, CAROL], "transfer_success_msg": "您好，之后由李四为您服务。"}
    log = await ops.get("/admin/members")
    assert "1 位已开始转接" in log
    refused = re.search(r'data-testid="wecom-refused">(.*?)</ul>', log, re.S)
    assert refused is not None
    assert f'data-member="{ids[BOB]}"' in refused.group(1) and "她不是原负责店员的企业微信客户" in refused.group(1)
    assert f'data-member="{ids[CAROL]}"' in refused.group(1) and "企业微信不认识这位客户" in refused.group(1)
    assert f'data-member="{ids[ALICE]}"' not in refused.group(1)

    # 24 hours on WeCom moves 王芳 and says so; her open task follows her.
    cloud.complete_transfers()
    corp = Corp(cloud, served, sessions)
    await corp.callback(contact_event("del_external_contact", ALICE, "zhangsan", Source="DELETE_BY_TRANSFER"))
    await corp.callback(contact_event("add_external_contact", ALICE, "lisi"))

    async def moved() -> bool:
        return await owner_of(sessions, ids[ALICE]) == ids["lisi"]

    await eventually(moved)
    async with sessions() as session:
        task = (await session.execute(select(StaffTask).where(StaffTask.dedupe_key == f"t:{ALICE}"))).scalar_one()
    assert task.staff_id == ids["lisi"]
    assert await owner_of(sessions, ids[BOB]) == ids["zhangsan"]


async def test_more_than_a_hundred_customers_go_in_calls_of_a_hundred(
    cloud: FakeWeComCloud, sessions: SessionFactory, ops: ConsoleClient
) -> None:
    customers = {f"wmMany{n:05d}": f"客户{n}" for n in range(150)}
    for external, name in customers.items():
        cloud.add_contact("zhangsan", external, name)
    ids = await seed(sessions, customers)
    await ops.post("/admin/members/bulk", {"action": "transfer", "staff": "lisi",
                                           "member": [str(ids[k]) for k in customers]})  # type: ignore[dict-item]
    await eventually(lambda: transfers_answered(sessions))
    calls = cloud.calls_to(TRANSFER)
    assert sorted(len(c.json["external_userid"]) for c in calls) == [50, 100]
    assert all("transfer_success_msg" not in c.json for c in calls)  # none typed: WeCom's own text
    assert sorted(e for c in calls for e in c.json["external_userid"]) == sorted(customers)
    assert len(cloud.transfers) == 150
    assert "150 位已开始转接" in await ops.get("/admin/members")


async def test_a_message_too_long_for_wecom_is_refused_and_nothing_changes(
    cloud: FakeWeComCloud, sessions: SessionFactory, ops: ConsoleClient
) -> None:
    cloud.add_contact("zhangsan", ALICE, "王芳")
    ids = await seed(sessions, {ALICE: "王芳"}, sandbox=("孙丽",))
    page = await ops.post("/admin/members/bulk", {"action": "transfer", "staff": "lisi", "transfer_message": "好" * 201,
                                                  "member": [str(ids[ALICE]), str(ids["孙丽"])]}, expect=400)
    assert "最多 200 个字" in page
    assert await owner_of(sessions, ids["孙丽"]) == ids["zhangsan"]
    async with sessions() as session:
        assert (await session.execute(select(OutboxEntry).where(OutboxEntry.route == "transfer_customer"))).first() is None
    assert cloud.calls_to(TRANSFER) == []


async def test_a_call_wecom_refuses_whole_names_every_customer_with_its_reason(
    cloud: FakeWeComCloud, sessions: SessionFactory, ops: ConsoleClient
) -> None:
    cloud.add_contact("zhangsan", ALICE, "王芳")
    ids = await seed(sessions, {ALICE: "王芳"})
    async with sessions() as session, session.begin():
        session.add(Staff(userid="wangwu", name="王五"))  # ours, but not a member of the WeCom corp
    await ops.post("/admin/members/bulk", {"action": "transfer", "staff": "wangwu", "member": str(ids[ALICE])})
    await eventually(lambda: transfers_answered(sessions))
    log = await ops.get("/admin/members")
    refused = re.search(r'data-testid="wecom-refused">(.*?)</ul>', log, re.S)
    assert refused is not None and f'data-member="{ids[ALICE]}"' in refused.group(1)
    assert "企业微信请求失败：errcode 40003" in refused.group(1)
    assert "0 位已开始转接" in log and cloud.transfers == []
    assert await owner_of(sessions, ids[ALICE]) == ids["zhangsan"]


async def test_a_colleague_who_already_had_her_as_a_contact_still_becomes_her_owner(
    cloud: FakeWeComCloud, sessions: SessionFactory, ops: ConsoleClient, served: RunningServer
) -> None:
    cloud.add_contact("zhangsan", ALICE, "王芳")
    cloud.add_contact("lisi", ALICE, "王芳")
    ids = await seed(sessions, {ALICE: "王芳"})
    await ops.post("/admin/members/bulk", {"action": "transfer", "staff": "lisi", "member": str(ids[ALICE])})
    await eventually(lambda: transfers_answered(sessions))
    # 24 hours on. lisi had her already, so WeCom only says she left zhangsan (no add event).
    cloud.complete_transfers()
    corp = Corp(cloud, served, sessions)
    await corp.callback(contact_event("del_external_contact", ALICE, "zhangsan", Source="DELETE_BY_TRANSFER"))

    async def moved() -> bool:
        return await owner_of(sessions, ids[ALICE]) == ids["lisi"]

    await eventually(moved)
    async with sessions() as session:
        task = (await session.execute(select(StaffTask).where(StaffTask.dedupe_key == f"t:{ALICE}"))).scalar_one()
    assert task.staff_id == ids["lisi"]
