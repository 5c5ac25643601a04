"""Was this mass send created already? add_msg_template has no idempotency key (WECOM.md
§9.4), so after an answer that never came the row is looked up before it is sent again:
the corp's mass sends over the time since the row was queued (get_groupmsg_list_v2,
filter_type 0), matched on chat type and text, then on the staff member the task went to
(get_groupmsg_task: WeCom leaves `creator` out for sends created through the API), and
not already the msgid of another of our rows (the calendar sends the same text to many
staff members, and the same text again on another day)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.platforms.wecom.client import WeComClient
from scheduler.delivery import OutboundMessage
from storage.engine import SessionFactory
from storage.outbox import mass_send_msgids_taken

log = logging.getLogger(__name__)
# Clocks differ: look a little before the row was queued and after now.
SLACK = timedelta(minutes=5)
LONGEST = timedelta(days=30)  # get_groupmsg_list_v2 takes at most a month


async def find_mass_send(
    client: WeComClient, sessions: SessionFactory, message: OutboundMessage, chat_type: str, now: datetime
) -> str | None:
    """The msgid of the task an earlier try created for this row, or None."""
    start = max((message.queued_at or now) - SLACK, now - LONGEST + SLACK)
    listed = await client.list_mass_sends(int(start.timestamp()), int((now + SLACK).timestamp()), chat_type)
    same_text = [
        str(item.get("msgid")) for item in listed
        if item.get("msgid") and (item.get("text") or {}).get("content") == message.body
    ]
    if not same_text:
        return None
    async with sessions() as session:
        taken = await mass_send_msgids_taken(session, same_text, message.id)
    for msgid in same_text:
        if msgid in taken:
            continue
        if message.recipient.lower() in await client.mass_send_senders(msgid):
            return msgid
    return None
