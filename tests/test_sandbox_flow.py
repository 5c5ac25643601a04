"""The whole flow through the sandbox platform: HTTP in, inbox, handlers, outbox, delivery."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import func, select

from bot.platforms.sandbox.hub import SANDBOX_HUB
from bot.settings.model import Settings
from bot.web.app import build_app
from handlers.updates import MessageUpdate, to_payload
from storage.engine import SessionFactory
from storage.inbox import InboxWriter, NewInboxEntry
from storage.members import member_by_identity
from storage.models import InboxEntry, Interaction, Member, MemberIdentity, OutboxEntry, utcnow
from storage.outbox import NewOutboxMessage, enqueue
from storage.tags import tags_of
from tests.conftest import RunningServer, eventually, start_server
from tests.sse import next_event


async def count(sessions: SessionFactory, model: type) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_a_message_is_stored_tagged_and_answered_by_the_persona(
    server: RunningServer, sessions: SessionFactory
) -> None:
    async with server.client.get(f"{server.base}/sandbox/events", params={"member": "王芳"}) as stream:
        await server.post_message("王芳", "想给孩子买点全麦吐司")
        reply = await next_event(stream)

    assert reply["direction"] == "out"
    assert "小禾" in reply["text"] and "面包控" in reply["text"]

    async def recorded() -> bool:  # the send is recorded a moment after the page got it
        async with sessions() as session:
            return [row.status for row in (await session.execute(select(OutboxEntry))).scalars()] == ["sent"]

    await eventually(recorded)
    async with sessions() as session:
        member = await member_by_identity(session, "sandbox", "王芳")
        assert member is not None and member.id is not None
        tags = await tags_of(session, member.id)
        kinds = (await session.execute(select(Interaction.kind).where(Interaction.member_id == member.id))).scalars().all()
        outbox = (await session.execute(select(OutboxEntry))).scalars().one()
    assert [(t.name, t.source, t.source_ref, t.hit_count) for t in tags] == [("面包控", "rule", "interest-bread", 1)]
    assert sorted(kinds) == ["message_in", "message_out"]
    assert outbox.status == "sent" and outbox.member_id == member.id and outbox.kind == "service"


async def test_history_shows_both_sides_of_the_conversation(server: RunningServer) -> None:
    async with server.client.get(f"{server.base}/sandbox/events", params={"member": "李娜"}) as stream:
        await server.post_message("李娜", "你好")
        reply = await next_event(stream)
    messages: list[dict] = []

    async def both_sides_recorded() -> bool:
        # The page hears of a delivery a moment before delivery records it.
        nonlocal messages
        async with server.client.get(f"{server.base}/sandbox/history", params={"member": "李娜"}) as response:
            messages = (await response.json())["messages"]
        return len(messages) == 2

    await eventually(both_sides_recorded)
    assert [(m["direction"], m["text"]) for m in messages] == [("in", "你好"), ("out", reply["text"])]
    assert messages[1]["key"] == reply["key"]
    async with server.client.get(f"{server.base}/sandbox/members", params={"q": "李"}) as response:
        assert {"id": "李娜", "name": "李娜", "store": None} in (await response.json())["members"]


async def test_the_same_update_twice_is_processed_once(server: RunningServer, sessions: SessionFactory) -> None:
    async with server.client.get(f"{server.base}/sandbox/events", params={"member": "张敏"}) as stream:
        first = await server.post_message("张敏", "吐司还有吗", client_id="m-1")
        second = await server.post_message("张敏", "吐司还有吗", client_id="m-1")
        await next_event(stream)
        third = await server.post_message("张敏", "面包呢", client_id="m-2")
        await next_event(stream)
    assert first == second != third
    assert await count(sessions, InboxEntry) == 2
    assert await count(sessions, OutboxEntry) == 2
    async with sessions() as session:
        member = await member_by_identity(session, "sandbox", "张敏")
        assert member is not None and member.id is not None
        (tag,) = await tags_of(session, member.id)
        inbound = (await session.execute(
            select(func.count()).where(Interaction.member_id == member.id, Interaction.kind == "message_in")
        )).scalar_one()
    assert inbound == 2 and tag.hit_count == 2


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "malformed JSON"),
        (b"", "malformed JSON"),
        (b"\xff\xfe", "UTF-8"),
        (json.dumps(["王芳", "你好"]).encode(), "JSON object"),
        (json.dumps({"text": "你好"}).encode(), '"member" is required'),
        (json.dumps({"member": "王芳"}).encode(), '"text" is required'),
        (json.dumps({"member": "王芳", "text": "   "}).encode(), '"text" is required'),
        (json.dumps({"member": "王芳", "text": 5}).encode(), '"text" is required'),
        (json.dumps({"member": "x" * 65, "text": "hi"}).encode(), "at most 64"),
        (json.dumps({"member": "王芳", "text": "hi", "id": "a b"}).encode(), '"id" must be'),
    ],
)
async def test_malformed_input_gets_400_and_nothing_is_stored(
    server: RunningServer, sessions: SessionFactory, body: bytes, error: str
) -> None:
    async with server.client.post(
        f"{server.base}/sandbox/messages", data=body, headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 400
        assert error in (await response.json())["error"]
    assert await count(sessions, InboxEntry) == 0
    assert await count(sessions, Member) == 0


async def test_an_oversized_body_gets_413_and_nothing_is_stored(
    server: RunningServer, sessions: SessionFactory
) -> None:
    body = json.dumps({"member": "王芳", "text": "很" * 200_000}, ensure_ascii=False)
    async with server.client.post(f"{server.base}/sandbox/messages", data=body.encode()) as response:
        assert response.status == 413
    assert await count(sessions, InboxEntry) == 0


async def test_a_restart_resumes_an_unprocessed_inbox_row_and_an_undelivered_outbox_row(
    settings: Settings, sessions: SessionFactory, http
) -> None:
    # What a crash leaves behind: an update acknowledged but never handled, and a reply
    # queued for another member but never sent (one even claimed mid-send).
    engine = sessions.kw["bind"]
    writer = InboxWriter(engine)
    writer.start()
    update = MessageUpdate("sandbox:赵雪:before-crash", "sandbox", "赵雪", "面包几点出炉", utcnow(), "赵雪")
    await writer.add(NewInboxEntry(update.key, "sandbox", "赵雪", to_payload(update)))
    await writer.close()
    async with sessions() as session, session.begin():
        member = Member(name="周杰")
        session.add(member)
        await session.flush()
        session.add(MemberIdentity(member_id=member.id, platform="sandbox", external_id="周杰"))
        await enqueue(session, [
            NewOutboxMessage("reply:old:0", "sandbox", "周杰", "service", "上次的回复", member_id=member.id),
            NewOutboxMessage("reply:old:1", "sandbox", "周杰", "service", "发到一半的回复", member_id=member.id),
        ], utcnow())
        claimed = (await session.execute(select(OutboxEntry).where(OutboxEntry.dedupe_key == "reply:old:1"))).scalar_one()
        claimed.status = "sending"
        session.add(claimed)

    app = build_app(settings)
    new_reply, old_replies = app[SANDBOX_HUB].watch("赵雪"), app[SANDBOX_HUB].watch("周杰")
    running = await start_server(app, http)
    try:
        reply = await asyncio_get(new_reply)
        resent = sorted([(await asyncio_get(old_replies))["text"], (await asyncio_get(old_replies))["text"]])
    finally:
        await running.stop()
    assert "面包控" in reply["text"]
    assert resent == ["上次的回复", "发到一半的回复"]
    async with sessions() as session:
        statuses = (await session.execute(select(OutboxEntry.status))).scalars().all()
        inbox = (await session.execute(select(InboxEntry.status))).scalars().all()
    assert sorted(statuses) == ["sent", "sent", "sent"] and inbox == ["done"]


async def asyncio_get(queue) -> dict:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(10):
        return await queue.get()


async def test_a_queued_marketing_message_is_held_when_the_member_opted_out_meanwhile(
    server: RunningServer, sessions: SessionFactory
) -> None:
    async with sessions() as session, session.begin():
        member = Member(name="吴婷", opted_out_at=utcnow())
        session.add(member)
        await session.flush()
        await enqueue(session, [
            NewOutboxMessage("calendar:1:吴婷", "sandbox", "吴婷", "marketing", "新品试吃", member_id=member.id),
            NewOutboxMessage("reply:x:0", "sandbox", "吴婷", "service", "您的订单已备好", member_id=member.id),
        ], utcnow())
    from bot.shared.keys import DELIVERY

    server.app[DELIVERY].wake()

    async def settled() -> bool:
        async with sessions() as session:
            rows = (await session.execute(select(OutboxEntry.status))).scalars().all()
        return all(s in ("sent", "held") for s in rows)

    await eventually(settled)
    async with sessions() as session:
        rows = {r.dedupe_key: (r.status, r.last_error) for r in (await session.execute(select(OutboxEntry))).scalars()}
    assert rows["calendar:1:吴婷"] == ("held", "member opted out of marketing")
    assert rows["reply:x:0"] == ("sent", None)


async def test_healthz_answers_when_the_database_does(server: RunningServer) -> None:
    async with server.client.get(f"{server.base}/healthz") as response:
        assert response.status == 200
        body = await response.json()
    assert body["status"] == "ok" and body["problems"] == []
    assert set(body["loops"]) == {"dispatcher", "delivery", "scheduler", "config-watch"}


async def test_one_word_opts_out_once_and_another_opts_back_in(server: RunningServer, sessions: SessionFactory) -> None:
    async with server.client.get(f"{server.base}/sandbox/events", params={"member": "郑洁"}) as stream:
        await server.post_message("郑洁", "吐司几点出炉")
        await next_event(stream)
        await server.post_message("郑洁", " ＴＤ ")  # full-width, padded: still the stop word
        confirmation = await next_event(stream)
        await server.post_message("郑洁", "退订")  # already out: no second confirmation
        await server.post_message("郑洁", "订阅")
        welcome_back = await next_event(stream)
    assert "不会再给你发活动" in confirmation["text"] and "订阅" in confirmation["text"]
    assert "欢迎回来" in welcome_back["text"]

    async with sessions() as session:
        member = await member_by_identity(session, "sandbox", "郑洁")
        bodies = (await session.execute(select(OutboxEntry.body).order_by(OutboxEntry.id))).scalars().all()
    assert member is not None and member.opted_out_at is None
    # One persona reply, one confirmation each way; the stop word itself got no persona reply.
    assert len(bodies) == 3 and bodies[1] == confirmation["text"] and bodies[2] == welcome_back["text"]


async def test_after_opting_out_marketing_is_held_but_service_replies_still_come(
    server: RunningServer, sessions: SessionFactory
) -> None:
    async with server.client.get(f"{server.base}/sandbox/events", params={"member": "冯静"}) as stream:
        await server.post_message("冯静", "退订")
        await next_event(stream)
        async with sessions() as session, session.begin():
            member = await member_by_identity(session, "sandbox", "冯静")
            assert member is not None and member.opted_out_at is not None
            await enqueue(session, [
                NewOutboxMessage("calendar:9:冯静", "sandbox", "冯静", "marketing", "新品上市", member_id=member.id),
            ], utcnow())
        await server.post_message("冯静", "请问营业时间")
        service = await next_event(stream)
    assert "小禾" in service["text"]

    async def marketing_settled() -> bool:
        async with sessions() as session:
            row = (await session.execute(select(OutboxEntry).where(OutboxEntry.kind == "marketing"))).scalars().one()
        return row.status == "held"

    await eventually(marketing_settled)
