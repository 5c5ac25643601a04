"""Official-account (公众号) callbacks into platform-neutral updates (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping

from bot.platforms.wecom.updates import MEDIA_LABELS, created_at, key_of
from handlers.updates import EventUpdate, MessageUpdate, Update

PLATFORM = "oa"


def to_update(fields: Mapping[str, str]) -> Update:
    """Follower messages and events; dedupe by MsgId, events by openid + CreateTime + Event."""
    openid, stamp, kind = fields.get("FromUserName", ""), fields.get("CreateTime", ""), fields.get("MsgType", "")
    at = created_at(fields)
    if kind != "event":
        return MessageUpdate(
            key=key_of(PLATFORM, "msg", fields.get("MsgId") or f"{openid}:{stamp}"),
            platform=PLATFORM,
            sender=openid,
            text=fields.get("Content", "") if kind == "text" else MEDIA_LABELS.get(kind, f"[{kind}]"),
            sent_at=at,
        )
    event = fields.get("Event", "").lower()  # the platform writes "subscribe" and "CLICK"
    detail = {name: fields[name] for name in ("EventKey", "Ticket") if fields.get(name)}
    return EventUpdate(
        key=key_of(PLATFORM, event, openid, stamp),
        platform=PLATFORM, sender=openid, event=event, occurred_at=at, detail=detail,
    )
