"""Welcomes ahead of everything else: a welcome code lives 20 s from the callback.

When new contacts arrive in a crowd (a QR-code campaign at a store opening), handling
each one whole — owner, channel tags, tag rules, engagement — one transaction at a time
takes longer than WeCom waits. So the welcome goes first, alone and in batches: for up to
a few hundred waiting rows, one transaction finds or creates their members, looks up the
stores their welcomes name, renders the welcomes and queues them, and hands the rows back
to the line for the rest of their handling. That later handling queues the same welcome
under the same key, which the outbox drops as a duplicate.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from content_templates.renderer import Renderer
from handlers.actions import Welcome
from handlers.config import HandlerConfig
from handlers.contact_events import welcome_text
from handlers.outbound import outbox_rows
from handlers.updates import EventUpdate, from_payload, is_urgent
from storage.engine import SessionFactory
from storage.inbox import UrgentRow, mark_not_urgent, take_urgent
from storage.members import resolve_members
from storage.outbox import NewOutboxMessage, enqueue
from storage.staff import welcome_stores
from storage.tracing import request_id_of, stamped, traced

log = logging.getLogger(__name__)

BATCH = 200


async def send_welcomes_early(
    sessions: SessionFactory, config: HandlerConfig, renderer: Renderer, now: datetime, batch: int = BATCH
) -> int:
    """Queue the welcome of every urgent row nobody is handling; returns how many rows
    were taken. A batch that fails is tried row by row, and a row that fails alone goes
    back to the line whole (its handling then records the failure)."""
    taken = 0
    while True:
        try:
            async with sessions() as session, session.begin():
                rows = await take_urgent(session, now, batch)
                await _queue_welcomes(session, rows, config, renderer, now)
                await mark_not_urgent(session, [row.id for row in rows])
        except Exception:
            log.exception("queueing welcomes ahead of the line failed; trying them one by one")
            return taken + await _one_by_one(sessions, config, renderer, now, batch)
        taken += len(rows)
        if len(rows) < batch:
            return taken


async def _one_by_one(
    sessions: SessionFactory, config: HandlerConfig, renderer: Renderer, now: datetime, batch: int
) -> int:
    async with sessions() as session:
        rows = await take_urgent(session, now, batch)
        await session.rollback()
    for row in rows:
        try:
            async with sessions() as session, session.begin():
                await _queue_welcomes(session, [row], config, renderer, now)
                await mark_not_urgent(session, [row.id])
        except Exception:
            log.exception("inbox row %s: welcome left to the row's own handling", row.id)
            async with sessions() as session, session.begin():
                await mark_not_urgent(session, [row.id])
    return len(rows)


async def _queue_welcomes(
    session: AsyncSession, rows: list[UrgentRow], config: HandlerConfig, renderer: Renderer, now: datetime
) -> None:
    updates = [(row, from_payload(row.payload)) for row in rows]
    welcomes = [(row, u) for row, u in updates if isinstance(u, EventUpdate) and is_urgent(u)]
    by_platform: dict[str, list[str]] = defaultdict(list)
    for _, update in welcomes:
        by_platform[update.platform].append(update.sender)
    members = {
        (platform, external_id): known
        for platform, senders in by_platform.items()
        for external_id, known in (await resolve_members(session, platform, senders, now)).items()
    }
    owners = {_owner_userid(config, u) for _, u in welcomes} - {None}
    codes = {channel.store for _, u in welcomes if (channel := config.channels.get(u.detail.get("State", ""))) and channel.store}
    staff_stores, stores = await welcome_stores(session, sorted(owners), sorted(codes))
    messages: list[NewOutboxMessage] = []
    for row, update in welcomes:
        member = members[(update.platform, update.sender)]
        state = update.detail.get("State", "")
        channel = config.channels.get(state)
        # The store her handling will give her: the channel's, else her owner's, else hers.
        store_name = (
            (stores.get(channel.store, (None, None))[1] if channel and channel.store else None)
            or staff_stores.get(_owner_userid(config, update) or "", (None, None))[1]
            or member.store_name
        )
        text = welcome_text(renderer, config, state, member.name, store_name)
        with traced(request_id_of(row.key)):
            for message in outbox_rows(row.id, update, member.id, [Welcome(update.detail["WelcomeCode"], text)],
                                       row.received_at):
                messages.append(_stamped(message))
            log.debug("inbox row %s: welcome queued ahead of the row's handling", row.id)
    await enqueue(session, messages, now)


def _owner_userid(config: HandlerConfig, update: EventUpdate) -> str | None:
    channel = config.channels.get(update.detail.get("State", ""))
    return (channel.owner if channel and channel.owner else None) or update.detail.get("UserID")


def _stamped(message: NewOutboxMessage) -> NewOutboxMessage:
    return replace(message, meta=stamped(message.meta))
