"""A staff member's conversation with the bot on one platform, and the staff to pick from.

Staff talk to the bot in commands (`完成 12`, `查 王芳`) and get prompts back; neither
side is an interaction with a member, so the conversation is read from where it is
kept: the staff member's own messages in the inbox, the prompts to them in the outbox.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import InboxEntry, OutboxEntry, Staff, Store

# The inbox payload is the update as compact JSON (separators "," and ":"). Inside a
# JSON string a quote is escaped, so this text matches the actor field and nothing a
# sender wrote; the payload is still parsed before a row is trusted.
_STAFF_ACTOR = '%"actor":"staff"%'


@dataclass(frozen=True, slots=True)
class StaffListing:
    userid: str
    name: str
    store: str | None


@dataclass(frozen=True, slots=True)
class StaffMessage:
    key: str  # "inbox:<id>" for the staff member's own message, "outbox:<id>" for a prompt
    direction: Literal["in", "out"]  # "in": the staff member wrote it; "out": sent to them
    text: str
    at: datetime
    meta: str = "{}"  # a prompt's outbox meta (JSON): its task link, if any


async def active_staff(session: AsyncSession) -> list[StaffListing]:
    """Every active staff member, by store then name."""
    statement = (
        select(Staff.userid, Staff.name, Store.name)
        .outerjoin(Store, Store.id == Staff.store_id)  # type: ignore[arg-type]
        .where(Staff.active == True)  # noqa: E712 - a SQL comparison
        .order_by(Store.name, Staff.name, Staff.userid)
    )
    rows = (await session.execute(statement)).all()
    return [StaffListing(userid, name, store) for userid, name, store in rows]


async def active_staff_member(session: AsyncSession, userid: str) -> Staff | None:
    statement = select(Staff).where(Staff.userid == userid, Staff.active == True)  # noqa: E712
    return (await session.execute(statement)).scalars().first()


async def staff_conversation(
    session: AsyncSession, platform: str, userid: str, limit: int = 100
) -> list[StaffMessage]:
    """The latest `limit` messages between the staff member and the bot, oldest first:
    what they wrote (inbox rows whose update's actor is staff) and the prompts sent to
    them (outbox rows of kind staff_prompt, once sent)."""
    inbox_rows = (
        await session.execute(
            select(InboxEntry.id, InboxEntry.payload, InboxEntry.received_at)
            .where(
                InboxEntry.platform == platform,
                InboxEntry.sender == userid,
                InboxEntry.payload.like(_STAFF_ACTOR),  # type: ignore[attr-defined]
            )
            .order_by(InboxEntry.id.desc())  # type: ignore[union-attr]
            .limit(limit)
        )
    ).all()
    outbox_rows = (
        await session.execute(
            select(OutboxEntry.id, OutboxEntry.body, OutboxEntry.sent_at, OutboxEntry.meta)
            .where(
                OutboxEntry.platform == platform,
                OutboxEntry.recipient == userid,
                OutboxEntry.kind == "staff_prompt",
                OutboxEntry.status == "sent",
            )
            .order_by(OutboxEntry.sent_at.desc(), OutboxEntry.id.desc())  # type: ignore[union-attr]
            .limit(limit)
        )
    ).all()
    messages: list[StaffMessage] = []
    for entry_id, payload, received_at in inbox_rows:
        text = _staff_text(payload)
        if text is not None:
            messages.append(StaffMessage(f"inbox:{entry_id}", "in", text, received_at))
    for entry_id, body, sent_at, meta in outbox_rows:
        if sent_at is not None:
            messages.append(StaffMessage(f"outbox:{entry_id}", "out", body, sent_at, meta))
    messages.sort(key=lambda m: (m.at, m.direction == "out", int(m.key.split(":")[1])))
    return messages[-limit:]


def _staff_text(payload: str) -> str | None:
    """The text of a staff member's message update; None for anything else."""
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("type") != "message" or body.get("actor") != "staff":
        return None
    text = body.get("text")
    return text if isinstance(text, str) else None
