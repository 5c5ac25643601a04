"""Who a WeCom mass send and a Moments post actually reached, read back as touches.

Both are sent by staff from their clients after we ask WeCom to create them, so siyu
learns who received them only by asking afterwards (WECOM.md §4.3, §9.2):

- a mass send, per staff member: `get_groupmsg_send_result` lists each target with its
  status (0 not sent yet, 1 sent with send_time, 2 not her customer, 3 over the
  customer's receiving cap); only status 1 is a touch, at its send_time;
- a Moments post, per publisher: `get_moment_send_result` lists the customers it
  reached (no time is given: the touch is when we saw she had published).

Each becomes one touch of the calendar entry by the sender, once (its ref names the
msgid or moment and the customer), so reading again adds nothing. Sends to customer
groups name groups, not customers: they are not touches.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

from bot.platforms.wecom.client import Json, WeComClient
from bot.platforms.wecom.errors import WeComApiError
from storage.engine import SessionFactory
from storage.outbox import mass_sends_to_read
from storage.outcomes import Received, TouchSource, record_received

log = logging.getLogger(__name__)
PLATFORM = "wecom"
SEND_RESULT = "/cgi-bin/externalcontact/get_groupmsg_send_result"
MOMENT_SEND_RESULT = "/cgi-bin/externalcontact/get_moment_send_result"
SENT = 1  # get_groupmsg_send_result status
SEND_RESULT_LIMIT, MOMENT_RESULT_LIMIT = 1000, 5000  # per page, at most


async def mass_send_receivers(client: WeComClient, msgid: str, userid: str) -> dict[str, int]:
    """The customers a staff member's share of a mass send reached → send_time (Unix)."""
    body: Json = {"msgid": msgid, "userid": userid, "limit": SEND_RESULT_LIMIT}
    return {
        str(item["external_userid"]): int(item["send_time"])
        async for item in _pages(client, SEND_RESULT, body, "send_list")
        if item.get("status") == SENT and item.get("external_userid") and item.get("send_time")
    }


async def moment_receivers(client: WeComClient, moment_id: str, userid: str) -> list[str]:
    """The customers a Moments post reached as this staff member published it."""
    body: Json = {"moment_id": moment_id, "userid": userid, "limit": MOMENT_RESULT_LIMIT}
    return [str(c["external_userid"]) async for c in _pages(client, MOMENT_SEND_RESULT, body, "customer_list")
            if c.get("external_userid")]


async def _pages(client: WeComClient, path: str, body: Json, key: str) -> AsyncIterator[Json]:
    """Every item of a listing WeCom pages with `next_cursor`."""
    cursor = ""
    while True:
        data = await client.call("POST", path, body={**body, "cursor": cursor} if cursor else body)
        for item in data.get(key) or []:
            yield item
        cursor = str(data.get("next_cursor") or "")
        if not cursor:
            return


async def read_mass_send_results(
    client: WeComClient, sessions: SessionFactory, now: datetime, days: int, scheme: str = "value",
) -> int:
    """For each mass send to customers created in the last `days` days, a touch per
    customer it reached; returns how many touches are new."""
    async with sessions() as session:
        sends = await mass_sends_to_read(session, now - timedelta(days=days))
    added = 0
    for send in sends:
        if send.chat_type != "single":
            continue
        try:
            reached = await mass_send_receivers(client, send.msgid, send.sender)
        except WeComApiError as error:  # one send WeCom will not answer for must not stop the others
            log.warning("WeCom mass send %s (row %d): results not read: %s", send.msgid, send.outbox_id, error)
            continue
        received = [Received(e, datetime.fromtimestamp(t, timezone.utc), f"mass:{send.msgid}:{e}")
                    for e, t in reached.items()]
        async with sessions() as session, session.begin():
            added += await record_received(session, PLATFORM, TouchSource("entry", send.entry[:64]), send.staff_id,
                                           received, scheme)
    if added:
        log.info("WeCom mass sends: %d new touches from %d sends read back", added, len(sends))
    return added
