"""The sandbox staff panel: staff write commands as they would to the WeCom app, and the
prompts meant for them reach their panel, never a member's page."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.shared.keys import DELIVERY
from handlers.updates import MessageUpdate, from_payload
from storage.engine import SessionFactory
from storage.models import InboxEntry, OutboxEntry, Staff, Store, utcnow
from storage.outbox import NewOutboxMessage, enqueue
from tests.conftest import RunningServer, eventually
from tests.sse import next_event


@pytest.fixture
async def staff(sessions: SessionFactory) -> None:
    async with sessions() as session, session.begin():
        store = Store(code="jingan", name="静安店", city="上海")
        session.add(store)
        await session.flush()
        session.add_all([
            Staff(userid="chenjing", name="陈静", store_id=store.id, role="manager"),
            Staff(userid="liuyang", name="刘洋"),
            Staff(userid="laowang", name="老王", store_id=store.id, active=False),
        ])


async def post_staff(server: RunningServer, userid: str, text: str, client_id: str | None = None) -> dict[str, Any]:
    body = {"staff": userid, "text": text} | ({"id": client_id} if client_id else {})
    async with server.client.post(f"{server.base}/sandbox/messages", json=body) as response:
        assert response.status == 202, await response.text()
        return await response.json()


async def prompt(server: RunningServer, sessions: SessionFactory, key: str, recipient: str, text: str, kind: str = "staff_prompt") -> None:
    """Queue a message as a handler would, and have delivery look now."""
    async with sessions() as session, session.begin():
        await enqueue(session, [NewOutboxMessage(key, "sandbox", recipient, kind, text)], utcnow())
    server.app[DELIVERY].wake()


async def sent(sessions: SessionFactory, key: str) -> bool:
    async with sessions() as session:
        status = (await session.execute(select(OutboxEntry.status).where(OutboxEntry.dedupe_key == key))).scalar_one()
    return status == "sent"


async def count(sessions: SessionFactory, model: type) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_a_staff_message_is_stored_as_a_staff_update(
    server: RunningServer, sessions: SessionFactory, staff: None
) -> None:
    answer = await post_staff(server, "chenjing", "完成 12", client_id="s-1")
    again = await post_staff(server, " chenjing ", "完成 12", client_id="s-1")

    assert answer == again == {"key": "sandbox:staff:chenjing:s-1"}
    async with sessions() as session:
        (row,) = (await session.execute(select(InboxEntry))).scalars().all()
    assert (row.key, row.platform, row.sender) == ("sandbox:staff:chenjing:s-1", "sandbox", "chenjing")
    assert json.loads(row.payload)["actor"] == "staff"
    update = from_payload(row.payload)
    assert isinstance(update, MessageUpdate)
    assert (update.actor, update.platform, update.sender, update.text, update.sender_name) == (
        "staff", "sandbox", "chenjing", "完成 12", "陈静"
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"staff": "nobody", "text": "完成 12"}, "no staff member with userid 'nobody'"),
        ({"staff": "laowang", "text": "完成 12"}, "no staff member with userid 'laowang'"),  # inactive
        ({"staff": "chenjing", "member": "王芳", "text": "完成 12"}, 'not both'),
        ({"text": "完成 12"}, '"member" is required'),
        ({"staff": "", "text": "完成 12"}, '"staff" must be a staff member'),
        ({"staff": 12, "text": "完成 12"}, '"staff" must be a staff member'),
        ({"staff": "x" * 65, "text": "完成 12"}, "at most 64"),
        ({"staff": "chenjing", "text": "  "}, '"text" is required'),
        ({"staff": "chenjing", "text": "很" * 2001}, "at most 2000"),
        ({"staff": "chenjing", "text": "完成 12", "id": "a:b"}, '"id" must be'),
        # A member so named would share a staff member's inbox keys.
        ({"member": "staff:chenjing", "text": "你好"}, 'must not start with "staff:"'),
    ],
)
async def test_a_bad_staff_message_gets_400_and_nothing_is_stored(
    server: RunningServer, sessions: SessionFactory, staff: None, body: dict[str, Any], error: str
) -> None:
    async with server.client.post(f"{server.base}/sandbox/messages", json=body) as response:
        assert response.status == 400
        assert error in (await response.json())["error"]
    assert await count(sessions, InboxEntry) == 0


async def test_a_staff_prompt_reaches_the_staff_panel_and_not_a_member_of_the_same_name(
    server: RunningServer, sessions: SessionFactory, staff: None
) -> None:
    events = f"{server.base}/sandbox/events"
    async with (
        server.client.get(events, params={"staff": "chenjing"}) as staff_stream,
        server.client.get(events, params={"member": "chenjing"}) as member_stream,
    ):
        await prompt(server, sessions, "prompt:t1", "chenjing", "今日任务 12：给王芳打个电话")
        first = await next_event(staff_stream)
        # Delivery is in order: had the prompt gone to the member's page too, it would come first.
        await prompt(server, sessions, "reply:m1", "chenjing", "您好，我是小禾", kind="service")
        to_member = await next_event(member_stream)
        await prompt(server, sessions, "prompt:t2", "chenjing", "今日任务 13：回访李娜")
        second = await next_event(staff_stream)

    assert first["direction"] == "out" and first["text"] == "今日任务 12：给王芳打个电话"
    assert first["key"].startswith("outbox:")
    assert to_member["text"] == "您好，我是小禾"
    assert second["text"] == "今日任务 13：回访李娜"


async def test_the_event_stream_wants_exactly_one_of_member_and_staff(server: RunningServer) -> None:
    for params in ({"staff": "chenjing", "member": "王芳"}, {"staff": " "}, {}):
        async with server.client.get(f"{server.base}/sandbox/events", params=params) as response:
            assert response.status == 400, params


async def test_the_staff_list_shows_the_active_staff_with_their_store(
    server: RunningServer, staff: None
) -> None:
    async with server.client.get(f"{server.base}/sandbox/staff") as response:
        assert response.status == 200
        listed = (await response.json())["staff"]
    assert sorted(listed, key=lambda s: s["userid"]) == [
        {"userid": "chenjing", "name": "陈静", "store": "静安店"},
        {"userid": "liuyang", "name": "刘洋", "store": None},
    ]


async def test_the_staff_conversation_lists_both_directions_in_order(
    server: RunningServer, sessions: SessionFactory, staff: None
) -> None:
    url = f"{server.base}/sandbox/staff/chenjing/messages"
    await post_staff(server, "chenjing", "查 王芳")
    await prompt(server, sessions, "prompt:look", "chenjing", "王芳 · 静安店 · 面包控")
    await eventually(lambda: sent(sessions, "prompt:look"))
    await post_staff(server, "chenjing", "完成 12")
    # What is not this staff member's conversation: a member of the same name and her
    # reply, another staff member's prompt, a prompt not yet sent.
    await server.post_message("chenjing", "吐司还有吗")
    await prompt(server, sessions, "prompt:other", "liuyang", "刘洋的任务")
    await eventually(lambda: sent(sessions, "prompt:other"))
    async with sessions() as session, session.begin():
        later = utcnow() + timedelta(days=365)
        await enqueue(session, [NewOutboxMessage("prompt:later", "sandbox", "chenjing", "staff_prompt", "明年的提醒", not_before=later)], utcnow())

    async with server.client.get(url) as response:
        assert response.status == 200
        body = await response.json()
    messages = body["messages"]
    assert body["staff"] == {"userid": "chenjing", "name": "陈静"}
    # The command handler may answer commands with prompts of its own; those may come
    # between, but ours are there, in order, and nothing else of ours is.
    ours = [(m["direction"], m["text"]) for m in messages if m["text"] in {"查 王芳", "王芳 · 静安店 · 面包控", "完成 12"}]
    assert ours == [("in", "查 王芳"), ("out", "王芳 · 静安店 · 面包控"), ("in", "完成 12")]
    assert [m["text"] for m in messages if m["direction"] == "in"] == ["查 王芳", "完成 12"]
    assert not {"吐司还有吗", "刘洋的任务", "明年的提醒"} & {m["text"] for m in messages}
    assert all(m["key"].startswith("inbox:" if m["direction"] == "in" else "outbox:") for m in messages)
    assert [m["at"] for m in messages] == sorted(m["at"] for m in messages)
    prompts = [int(m["key"].removeprefix("outbox:")) for m in messages if m["direction"] == "out"]
    async with sessions() as session:
        rows = (await session.execute(select(OutboxEntry).where(OutboxEntry.id.in_(prompts)))).scalars().all()  # type: ignore[union-attr]
    assert len(rows) == len(prompts)
    assert {(r.kind, r.recipient, r.status) for r in rows} == {("staff_prompt", "chenjing", "sent")}

    async with server.client.get(f"{server.base}/sandbox/staff/nobody/messages") as response:
        assert response.status == 404
        assert "no staff member with userid 'nobody'" in (await response.json())["error"]
