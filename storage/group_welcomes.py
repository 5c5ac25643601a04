"""Customer-group welcome templates and channels' group join ways, as we keep them: each
change marks the row `pending` and queues one request row (route `group_welcome` or
`join_way`) the WeCom sender answers by creating, editing or deleting WeCom's copy."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.outbox import NewOutboxMessage, enqueue
from storage.outreach_models import GroupWelcome, JoinWay

WELCOME_ROUTE, JOIN_ROUTE = "group_welcome", "join_way"
MAX_WELCOMES = 100  # WeCom's per-corp limit


@dataclass(frozen=True, slots=True)
class WelcomeContent:
    text: str = ""
    image_url: str | None = None
    link_title: str | None = None
    link_url: str | None = None
    link_desc: str | None = None
    link_picurl: str | None = None
    notify: bool = True


def content_of(row: GroupWelcome) -> WelcomeContent:
    return WelcomeContent(row.text, row.image_url, row.link_title, row.link_url, row.link_desc, row.link_picurl, row.notify)


def _sync_row(route: str, recipient: str, now: datetime) -> NewOutboxMessage:
    return NewOutboxMessage(f"{route}:{recipient}:{now.isoformat()}", "wecom", recipient, "request", "", route=route)


async def list_welcomes(session: AsyncSession) -> Sequence[GroupWelcome]:
    return (await session.execute(select(GroupWelcome).order_by(GroupWelcome.key))).scalars().all()  # type: ignore[arg-type]


async def welcome_by_key(session: AsyncSession, key: str) -> GroupWelcome | None:
    return (await session.execute(select(GroupWelcome).where(GroupWelcome.key == key))).scalars().first()


async def count_welcomes(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(GroupWelcome))).scalar_one())


async def save_welcome(
    session: AsyncSession, key: str, content: WelcomeContent, source: str, now: datetime
) -> GroupWelcome | None:
    """Create or change the template `key`, queuing its sync when it changed; None when
    it would be one more than WeCom's 100."""
    row = await welcome_by_key(session, key)
    if row is None:
        if await count_welcomes(session) >= MAX_WELCOMES:
            return None
        row = GroupWelcome(key=key, source=source)
    elif content_of(row) == content and row.sync_status != "deleting":
        return row
    for name, value in asdict(content).items():
        setattr(row, name, value)
    row.sync_status, row.sync_error, row.updated_at = "pending", None, now
    session.add(row)
    await session.flush()
    await enqueue(session, [_sync_row(WELCOME_ROUTE, key, now)], now)
    return row


async def delete_welcome(session: AsyncSession, key: str, now: datetime) -> bool:
    """Take the template out of WeCom, then out of here (the sender removes the row)."""
    row = await welcome_by_key(session, key)
    if row is None:
        return False
    row.sync_status, row.updated_at = "deleting", now
    session.add(row)
    await enqueue(session, [_sync_row(WELCOME_ROUTE, key, now)], now)
    return True


async def sync_config_welcomes(session: AsyncSession, welcomes: Mapping[str, WelcomeContent], now: datetime) -> list[str]:
    """Make the templates from the configuration file what it says (those the console
    made stay): returns the keys it could not add (over the limit)."""
    refused = []
    for key, content in welcomes.items():
        if await save_welcome(session, key, content, "config", now) is None:
            refused.append(key)
    for row in await list_welcomes(session):
        if row.source == "config" and row.key not in welcomes and row.sync_status != "deleting":
            await delete_welcome(session, row.key, now)
    return refused


async def sync_join_ways(session: AsyncSession, wanted: Mapping[str, tuple[Sequence[str], str | None]], now: datetime) -> None:
    """Channels' join ways as the configuration says: channel → (chat ids, room name).
    A channel whose groups are gone from the configuration has its join way deleted."""
    rows = {row.channel: row for row in (await session.execute(select(JoinWay))).scalars().all()}
    queued = []
    for channel, (chats, room) in wanted.items():
        row = rows.get(channel) or JoinWay(channel=channel)
        if channel in rows and json.loads(row.chat_ids) == list(chats) and row.room_name == room and row.sync_status != "deleting":
            continue
        row.chat_ids, row.room_name, row.sync_status, row.sync_error, row.updated_at = (
            json.dumps(list(chats)), room, "pending", None, now)
        session.add(row)
        queued.append(_sync_row(JOIN_ROUTE, channel, now))
    for channel, row in rows.items():
        if channel not in wanted and row.sync_status != "deleting":
            row.sync_status, row.updated_at = "deleting", now
            session.add(row)
            queued.append(_sync_row(JOIN_ROUTE, channel, now))
    await enqueue(session, queued, now)


async def list_join_ways(session: AsyncSession) -> Sequence[JoinWay]:
    return (await session.execute(select(JoinWay).order_by(JoinWay.channel))).scalars().all()  # type: ignore[arg-type]
