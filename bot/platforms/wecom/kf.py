"""WeChat Customer Service (微信客服): messages are pulled, not pushed.

The kf_msg_or_event callback only says "something is waiting" and hands over a token
valid for 10 minutes; sync_msg returns the messages from a cursor we keep durably. Each
customer message becomes an ordinary member message in the inbox — stored before the
cursor moves, so a crash re-reads rather than loses (the msgid keys make that harmless).
What a servicer (a staff member) wrote from WeCom comes back in the same pull: it becomes
a "staff_replied" event about the customer, counted as the staff's reply to her.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from bot.platforms.wecom.updates import MEDIA_LABELS, PLATFORM, key_of
from handlers.record_interaction import STAFF_REPLIED
from handlers.updates import EventUpdate, MessageUpdate

CUSTOMER_ORIGIN = 3  # 3: the customer wrote; 4: a system event; 5: a servicer wrote
SERVICER_ORIGIN = 5


def cursor_name(open_kfid: str) -> str:
    return f"wecom:kf:{open_kfid}"


def to_message(item: Mapping[str, Any]) -> MessageUpdate | None:
    """A sync_msg entry as a member message, or None for what is not a customer's words."""
    if item.get("origin") != CUSTOMER_ORIGIN or not item.get("external_userid"):
        return None
    kind = str(item.get("msgtype", ""))
    text = item.get("text", {}).get("content", "") if kind == "text" else MEDIA_LABELS.get(kind, f"[{kind}]")
    return MessageUpdate(
        key=key_of(PLATFORM, "kf", str(item["msgid"])),
        platform=PLATFORM,
        sender=str(item["external_userid"]),
        text=text,
        sent_at=datetime.fromtimestamp(int(item.get("send_time", 0)), timezone.utc),
        conversation=f"kf:{item.get('open_kfid', '')}",
    )


def to_update(item: Mapping[str, Any]) -> MessageUpdate | EventUpdate | None:
    """A sync_msg entry as an update: a customer's words as her message, a servicer's
    words to her as a "staff_replied" event about her; None for the rest."""
    if item.get("origin") == SERVICER_ORIGIN and item.get("external_userid"):
        servicer = item.get("servicer_userid")
        return EventUpdate(
            key=key_of(PLATFORM, "kf", str(item["msgid"])),
            platform=PLATFORM,
            sender=str(item["external_userid"]),
            event=STAFF_REPLIED,
            occurred_at=datetime.fromtimestamp(int(item.get("send_time", 0)), timezone.utc),
            detail={"servicer": str(servicer)} if servicer else {},
            actor="member",
        )
    return to_message(item)
