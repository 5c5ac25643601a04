"""Decrypted WeCom callbacks into platform-neutral updates (pure functions).

Idempotency keys follow the docs: MsgId for messages; for events not FromUserName +
CreateTime alone — every customer-contact event comes from `sys`, so two events in one
second would collide — but Event + ChangeType + the ids it names + CreateTime.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timezone

from handlers.updates import EventUpdate, MessageUpdate, Update

PLATFORM = "wecom"
MAX_KEY = 191
CONTACT_DETAIL = ("UserID", "State", "WelcomeCode", "Source", "FailReason")
CHAT_DETAIL = ("UpdateDetail", "JoinScene", "QuitScene", "MemChangeCnt", "MemChangeList", "LastMemVer", "CurMemVer")
TAG_DETAIL = ("Id", "TagType", "ChangeType", "StrategyId")
MEDIA_LABELS = {"image": "[图片]", "voice": "[语音]", "video": "[视频]", "file": "[文件]", "location": "[位置]", "link": "[链接]"}


def created_at(fields: Mapping[str, str]) -> datetime:
    try:
        return datetime.fromtimestamp(int(fields.get("CreateTime", "0")), timezone.utc)
    except (ValueError, OverflowError):
        return datetime.fromtimestamp(0, timezone.utc)


def key_of(*parts: str) -> str:
    key = ":".join(parts)
    if len(key) <= MAX_KEY:
        return key
    return key[:150] + ":" + hashlib.sha1(key.encode()).hexdigest()


def _pick(fields: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    return {name: fields[name] for name in names if fields.get(name)}


def to_update(fields: Mapping[str, str]) -> Update:
    """Every callback becomes an update: one we do not know is kept as a system event."""
    at = created_at(fields)
    stamp = fields.get("CreateTime", "")
    if fields.get("MsgType") != "event":
        # A staff member writing to the app (members reach us through Customer Service).
        kind = fields.get("MsgType", "")
        return MessageUpdate(
            key=key_of(PLATFORM, "msg", fields.get("MsgId") or f"{fields.get('FromUserName', '')}:{stamp}"),
            platform=PLATFORM,
            sender=fields.get("FromUserName", ""),
            text=fields.get("Content") if kind == "text" else MEDIA_LABELS.get(kind, f"[{kind}]"),
            sent_at=at,
            actor="staff",
        )
    event = fields.get("Event", "")
    change = fields.get("ChangeType", "")
    if event == "change_external_contact":
        external, staff = fields.get("ExternalUserID", ""), fields.get("UserID", "")
        return EventUpdate(
            key=key_of(PLATFORM, event, change, staff, external, stamp),
            platform=PLATFORM, sender=external, event=change, occurred_at=at,
            detail=_pick(fields, CONTACT_DETAIL),
        )
    if event == "change_external_chat":
        detail = _pick(fields, CHAT_DETAIL)
        # Two member changes of one group in one second differ only in who changed.
        who = hashlib.sha1(detail.get("MemChangeList", "").encode()).hexdigest()[:10]
        chat = fields.get("ChatId", "")
        return EventUpdate(
            key=key_of(PLATFORM, event, change, chat, detail.get("UpdateDetail", ""), who, stamp),
            platform=PLATFORM, sender=chat, event=f"chat_{change}", occurred_at=at,
            detail=detail, actor="system",
        )
    if event == "change_external_tag":
        detail = _pick(fields, TAG_DETAIL)
        return EventUpdate(
            key=key_of(PLATFORM, event, change, detail.get("TagType", ""), detail.get("Id", ""), stamp),
            platform=PLATFORM, sender=detail.get("Id", ""), event=f"tag_{change}", occurred_at=at,
            detail=detail, actor="system",
        )
    if event == "change_contact" and change == "delete_user":
        # A staff member removed from the corp (成员变更通知): her work is handed over.
        userid = fields.get("UserID", "")
        return EventUpdate(
            key=key_of(PLATFORM, event, change, userid, stamp),
            platform=PLATFORM, sender=userid, event="staff_left", occurred_at=at, actor="system",
        )
    if event == "kf_msg_or_event":
        kfid, token = fields.get("OpenKfId", ""), fields.get("Token", "")
        return EventUpdate(
            key=key_of(PLATFORM, event, kfid, token or stamp),
            platform=PLATFORM, sender=kfid, event=event, occurred_at=at,
            detail={"Token": token}, actor="system",
        )
    # An app event from staff (enter_agent, menu click…) or something new: kept, keyed
    # by everything it says.
    digest = hashlib.sha1(repr(sorted(fields.items())).encode()).hexdigest()[:16]
    return EventUpdate(
        key=key_of(PLATFORM, event or "unknown", stamp, digest),
        platform=PLATFORM, sender=fields.get("FromUserName", ""), event=event or "unknown",
        occurred_at=at, detail=dict(fields), actor="staff" if fields.get("FromUserName") != "sys" else "system",
    )
