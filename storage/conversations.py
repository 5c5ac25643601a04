"""One member's conversation across platforms, with what the bot did and why, and the
open hand-offs queue.

The conversation merges, by time: her messages and events (interactions), what was
queued to her (outbox rows — sent, held by her opt-out, deferred, failed — each with
the reason the bot gave it, `meta.why`), people's replies, the tags rules gave her and
the hand-off tasks opened for her.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, case, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    InboxEntry,
    Interaction,
    Member,
    MemberIdentity,
    MemberTag,
    OutboxEntry,
    Staff,
    StaffTask,
    Store,
    Tag,
)

HANDOFF = "handoff_reply"
MESSAGE_ROUTES = ("message", "welcome")


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the conversation."""

    at: datetime
    kind: str  # in | bot | staff | event | tag | handoff
    platform: str
    text: str
    status: str = ""  # an outbox row's: sent | pending | held | deferred | failed
    why: str = ""  # the bot's reason (faq:<id>, persona, handoff:<reason>…), a rule id, a task's reason
    detail: str = ""  # a hold's reason, a task's assignee


async def conversation(session: AsyncSession, member_id: int, limit: int = 200) -> list[Line]:
    """Her last `limit` lines of each source, merged oldest first."""
    lines: list[Line] = []
    interactions = await session.execute(
        select(Interaction).where(Interaction.member_id == member_id)
        .order_by(Interaction.at.desc()).limit(limit))  # type: ignore[attr-defined]
    for i in interactions.scalars():
        if (i.ref or "").startswith("outbox:"):
            continue  # shown from its outbox row, with why
        kind = {"message_in": "in", "message_out": "bot", "staff_out": "staff"}.get(i.kind, "event")
        lines.append(Line(i.at, kind, i.platform, i.text or ""))
    rows = await session.execute(
        select(OutboxEntry).where(OutboxEntry.member_id == member_id, OutboxEntry.route.in_(MESSAGE_ROUTES))  # type: ignore[attr-defined]
        .order_by(OutboxEntry.id.desc()).limit(limit))  # type: ignore[union-attr]
    for row in rows.scalars():
        meta = json.loads(row.meta or "{}")
        if meta.get("by_staff"):  # a person's reply from the console: who, not why
            lines.append(Line(row.sent_at or row.created_at, "staff", row.platform, row.body, row.status, "",
                              str(meta["by_staff"])))
            continue
        lines.append(Line(row.sent_at or row.created_at, "bot", row.platform, row.body, row.status,
                          str(meta.get("why") or row.kind), row.last_error or ""))
    tags = await session.execute(
        select(MemberTag.first_seen, Tag.name, MemberTag.source, MemberTag.source_ref)
        .join(Tag, Tag.id == MemberTag.tag_id)  # type: ignore[arg-type]
        .where(MemberTag.member_id == member_id).order_by(MemberTag.first_seen.desc()).limit(limit))  # type: ignore[attr-defined]
    for first_seen, name, source, ref in tags.all():
        lines.append(Line(first_seen, "tag", source, name, why=ref or ""))
    tasks = await session.execute(
        select(StaffTask, Staff.name).outerjoin(Staff, Staff.id == StaffTask.staff_id)  # type: ignore[arg-type]
        .where(StaffTask.member_id == member_id, StaffTask.kind == HANDOFF)
        .order_by(StaffTask.id.desc()).limit(limit))  # type: ignore[union-attr]
    for task, staff_name in tasks.all():
        lines.append(Line(task.created_at, "handoff", "", task.title, task.status,
                          (task.note or "") if task.status == "open" else "", staff_name or ""))
    return sorted(lines, key=lambda line: line.at)


@dataclass(frozen=True, slots=True)
class ReplyRoute:
    """Where a person's reply to her goes: a platform where the brand's account speaks."""

    platform: str
    recipient: str
    conversation: str | None = None  # WeChat Customer Service: kf:<open_kfid>


async def reply_route(session: AsyncSession, member_id: int) -> ReplyRoute | None:
    """The account she last wrote to that the brand answers from: the sandbox, the
    official account, or a WeChat Customer Service conversation. A WeCom contact's chat
    is staff's own, answered in their WeCom client: None."""
    identities = {i.platform: i.external_id for i in (await session.execute(
        select(MemberIdentity).where(MemberIdentity.member_id == member_id))).scalars()}
    spoke = await session.execute(
        select(Interaction.platform).where(Interaction.member_id == member_id, Interaction.kind == "message_in")
        .order_by(Interaction.at.desc()).limit(20))  # type: ignore[attr-defined]
    order = list(dict.fromkeys([*spoke.scalars(), "sandbox", "oa", "wecom"]))
    for platform in order:
        external_id = identities.get(platform)
        if external_id is None:
            continue
        if platform in ("sandbox", "oa"):
            return ReplyRoute(platform, external_id)
        if platform == "wecom" and (kf := await _kf_conversation(session, external_id)) is not None:
            return ReplyRoute(platform, external_id, kf)
    return None


async def _kf_conversation(session: AsyncSession, external_id: str) -> str | None:
    """Her latest WeChat Customer Service conversation, read from the inbox."""
    statement = (select(InboxEntry.payload).where(
        InboxEntry.platform == "wecom", InboxEntry.sender == external_id,
        InboxEntry.payload.like('%"conversation":"kf:%'))  # type: ignore[union-attr]
        .order_by(InboxEntry.id.desc()).limit(1))  # type: ignore[union-attr]
    payload = (await session.execute(statement)).scalar()
    conversation = json.loads(payload).get("conversation") if payload else None
    return conversation if isinstance(conversation, str) else None


# -- the hand-off queue ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Handoff:
    task: StaffTask
    member_name: str | None
    store: str | None
    staff_name: str | None


def _queue_scope(staff_id: int | None, store_id: int | None) -> ColumnElement[bool]:
    """Operators (both None): every hand-off; a manager: hers and her store's members'; staff: hers."""
    if staff_id is None and store_id is None:
        return true()
    mine = StaffTask.staff_id == staff_id
    if store_id is None:
        return mine
    return or_(mine, Member.store_id == store_id, Staff.store_id == store_id)


async def open_handoffs(session: AsyncSession, staff_id: int | None, store_id: int | None,
                        limit: int = 200) -> list[Handoff]:
    """Open hand-offs, unassigned first, then the oldest."""
    statement = (
        select(StaffTask, Member.name, Store.name, Staff.name)
        .outerjoin(Member, Member.id == StaffTask.member_id)  # type: ignore[arg-type]
        .outerjoin(Store, Store.id == Member.store_id)  # type: ignore[arg-type]
        .outerjoin(Staff, Staff.id == StaffTask.staff_id)  # type: ignore[arg-type]
        .where(StaffTask.kind == HANDOFF, StaffTask.status == "open", _queue_scope(staff_id, store_id))
        .order_by(case((StaffTask.staff_id.is_(None), 0), else_=1), StaffTask.created_at, StaffTask.id)  # type: ignore[union-attr]
        .limit(limit)
    )
    return [Handoff(*row) for row in (await session.execute(statement)).all()]


async def unassigned_handoffs(session: AsyncSession) -> int:
    statement = select(func.count()).where(StaffTask.kind == HANDOFF, StaffTask.status == "open",
                                           StaffTask.staff_id.is_(None))  # type: ignore[union-attr]
    return int((await session.execute(statement)).scalar_one())
