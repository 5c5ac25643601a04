"""A servicer's words in WeChat Customer Service (sync_msg origin 5) count as the staff's
reply to the customer: an interaction of kind staff_out, and nothing else happens."""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select

from bot.platforms.wecom.kf import to_message, to_update
from bot.shared.keys import SETTINGS
from handlers.updates import EventUpdate, MessageUpdate, from_payload, to_payload
from storage.engagement import NO_LAYER, engagement_series, snapshot_day
from storage.members import member_by_identity
from storage.models import Interaction, OutboxEntry
from tests.conftest import eventually
from tests.wecom_harness import CORP, KF_SEND, SEND, Corp

KF = "wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q"
ALICE = "wmAJ2GCAAAXtWyujaWJHDDGi0mAAAA"
_ids = itertools.count(1)
# Every kf callback queues a pull; anything else queued would be the chain acting.
NOT_PULLS = select(func.count()).select_from(OutboxEntry).where(OutboxEntry.route != "pull")


def servicer_item(external_userid: str | None, servicer: str | None, text: str, send_time: int) -> dict[str, Any]:
    """A sync_msg entry as WeCom gives it when a servicer writes from WeCom (origin 5)."""
    item: dict[str, Any] = {"msgid": f"servicer_msgid_{next(_ids)}", "open_kfid": KF, "send_time": send_time,
                            "origin": 5, "msgtype": "text", "text": {"content": text}}
    if external_userid is not None:
        item["external_userid"] = external_userid
    if servicer is not None:
        item["servicer_userid"] = servicer
    return item


def kf_event(token: str) -> str:
    return (f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><CreateTime>{int(time.time())}</CreateTime>"
            f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>"
            f"<Token><![CDATA[{token}]]></Token><OpenKfId><![CDATA[{KF}]]></OpenKfId></xml>")


def test_a_servicer_message_becomes_a_staff_replied_event_about_the_customer() -> None:
    item = servicer_item(ALICE, "zhangsan", "您好，吐司还有的", 1615478585)
    update = to_update(item)
    assert isinstance(update, EventUpdate)
    assert (update.key, update.platform, update.sender, update.event, update.actor, update.detail) == (
        f"wecom:kf:{item['msgid']}", "wecom", ALICE, "staff_replied", "member", {"servicer": "zhangsan"}
    )
    assert update.occurred_at == datetime.fromtimestamp(1615478585, timezone.utc)
    assert from_payload(to_payload(update)) == update  # it survives the inbox
    assert to_update(servicer_item(ALICE, None, "hi", 1615478585)).detail == {}  # type: ignore[union-attr]
    assert to_update(servicer_item(None, "zhangsan", "hi", 1615478585)) is None  # nobody to count it for
    assert to_message(servicer_item(ALICE, "zhangsan", "hi", 1615478585)) is None


def test_customer_messages_and_system_events_are_as_before() -> None:
    customer = {"msgid": "m1", "open_kfid": KF, "external_userid": ALICE, "send_time": 1615478585,
                "origin": 3, "msgtype": "text", "text": {"content": "你好"}}
    assert isinstance(to_update(customer), MessageUpdate) and to_update(customer) == to_message(customer)
    assert to_update({"msgid": "x", "origin": 4, "msgtype": "event", "event": {}}) is None


async def test_a_servicer_reply_is_recorded_as_staff_out_and_starts_nothing(corp: Corp) -> None:
    token = corp.cloud.customer_writes(KF, ALICE, "吐司今天还有吗")
    assert (await corp.callback(kf_event(token)))[0] == 200
    await eventually(lambda: _count_at_least(corp.cloud.deliveries(KF_SEND), 1))

    async def kinds() -> list[tuple[str, str | None]]:
        async with corp.sessions() as session:
            found = await member_by_identity(session, "wecom", ALICE)
            assert found is not None
            rows = await session.execute(
                select(Interaction.kind, Interaction.text).where(Interaction.member_id == found.id)
                .order_by(Interaction.id)  # type: ignore[arg-type]
            )
            return [(kind, text) for kind, text in rows]

    await eventually(lambda: _has_kind(kinds, "message_out"))  # the persona's reply, delivered
    async with corp.sessions() as session:
        outbox_before = (await session.execute(NOT_PULLS)).scalar_one()

    token = corp.cloud.servicer_writes(KF, ALICE, "zhangsan", "您好，我是店长，吐司还有的")
    assert (await corp.callback(kf_event(token)))[0] == 200
    await eventually(lambda: _has_kind(kinds, "staff_out"))

    assert await kinds() == [("message_in", "吐司今天还有吗"), ("message_out", await _reply_text(corp)),
                             ("staff_out", "zhangsan")]
    async with corp.sessions() as session:
        outbox_after = (await session.execute(NOT_PULLS)).scalar_one()
    assert outbox_after == outbox_before  # no reply, no hand-off prompt, no profile fetch
    assert len(corp.cloud.deliveries(KF_SEND)) == 1 and corp.cloud.deliveries(SEND) == []

    # And the day's engagement tells the bot's reply from the staff's.
    now = datetime.now(timezone.utc)
    zone = corp.server.app[SETTINGS].zone
    async with corp.sessions() as session, session.begin():
        await snapshot_day(session, "value", now.astimezone(zone).date(), zone, now)
    async with corp.sessions() as session:
        (row,) = await engagement_series(session, "value", now.astimezone(zone).date(), now.astimezone(zone).date())
    assert row.layer == NO_LAYER
    assert (row.active, row.messages_in, row.messages_out, row.bot_replies, row.staff_replies) == (1, 1, 1, 1, 1)
    assert row.median_first_reply_seconds is not None and 0 <= row.median_first_reply_seconds < 60


async def _reply_text(corp: Corp) -> str:
    (reply,) = corp.cloud.deliveries(KF_SEND)
    return str(reply.body["text"]["content"])


async def _has_kind(kinds: Any, kind: str) -> bool:
    return any(k == kind for k, _ in await kinds())


async def _count_at_least(items: list, n: int) -> bool:  # type: ignore[type-arg]
    return len(items) >= n
