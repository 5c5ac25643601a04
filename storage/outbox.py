"""The outbox: every message to a member or staff member, with a unique dedupe key.

Rows move pending → sending → sent | failed | held, or wait as deferred (quiet hours)
until `not_before`. `sending` is a claim: a process that dies mid-send leaves it, and
`release_interrupted` returns such rows on start.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialects import insert_ignoring_conflicts
from storage.models import OutboxEntry
from storage.tables import OUTBOX
from storage.tracing import stamped


@dataclass(frozen=True, slots=True)
class NewOutboxMessage:
    dedupe_key: str
    platform: str
    recipient: str
    kind: str
    body: str
    member_id: int | None = None
    staff_id: int | None = None
    not_before: datetime | None = None
    route: str = "message"
    meta: str = "{}"  # JSON parameters of the route


async def enqueue(
    session: AsyncSession, messages: Sequence[NewOutboxMessage], now: datetime
) -> None:
    """Queue messages; one whose dedupe key is already queued (or sent) is dropped.
    Each carries the current request id in its meta (storage/tracing.py)."""
    if not messages:
        return
    statement = insert_ignoring_conflicts(OUTBOX, session.bind.dialect.name, ["dedupe_key"])
    await session.execute(
        statement,
        [
            {
                "dedupe_key": m.dedupe_key,
                "platform": m.platform,
                "recipient": m.recipient,
                "member_id": m.member_id,
                "staff_id": m.staff_id,
                "kind": m.kind,
                "route": m.route,
                "meta": stamped(m.meta),
                "body": m.body,
                "status": "pending",
                "attempts": 0,
                "not_before": m.not_before or now,
                "created_at": now,
            }
            for m in messages
        ],
    )


async def claim_due(session: AsyncSession, now: datetime, limit: int) -> Sequence[OutboxEntry]:
    """Claim due rows for sending. On PostgreSQL, workers skip each other's claims."""
    statement = (
        select(OutboxEntry)
        .where(OutboxEntry.status.in_(("pending", "deferred")), OutboxEntry.not_before <= now)  # type: ignore[attr-defined]
        .order_by(OutboxEntry.not_before, OutboxEntry.id)  # type: ignore[arg-type]
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = (await session.execute(statement)).scalars().all()
    for row in rows:
        row.status = "sending"
        row.attempts += 1
        session.add(row)
    return rows


async def mark_sent(
    session: AsyncSession, entry_id: int, now: datetime, platform_msg_id: str | None
) -> None:
    await session.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id == entry_id)
        .values(status="sent", sent_at=now, platform_msg_id=platform_msg_id, last_error=None)
    )


async def mark_failed(session: AsyncSession, entry_id: int, error: str) -> None:
    await session.execute(
        update(OUTBOX).where(OUTBOX.c.id == entry_id).values(status="failed", last_error=error)
    )


async def mark_held(session: AsyncSession, entry_id: int, reason: str) -> None:
    """Never to be sent (e.g. the member opted out); the reason stays on the row."""
    await session.execute(
        update(OUTBOX).where(OUTBOX.c.id == entry_id).values(status="held", last_error=reason)
    )


async def mark_deferred(session: AsyncSession, entry_id: int, until: datetime, reason: str) -> None:
    """Not now (quiet hours): sent when `until` comes, the reason on the row meanwhile."""
    await session.execute(
        update(OUTBOX).where(OUTBOX.c.id == entry_id).values(status="deferred", not_before=until, last_error=reason)
    )


async def marketing_sent_since(session: AsyncSession, member_id: int, since: datetime) -> int:
    statement = select(func.count()).where(
        OutboxEntry.member_id == member_id, OutboxEntry.kind == "marketing",
        OutboxEntry.status == "sent", OutboxEntry.sent_at >= since,  # type: ignore[operator]
    )
    return int((await session.execute(statement)).scalar_one())


async def retry_later(session: AsyncSession, entry_id: int, at: datetime, error: str) -> None:
    await session.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id == entry_id)
        .values(status="pending", not_before=at, last_error=error)
    )


async def release_interrupted(session: AsyncSession) -> int:
    """Return rows left `sending` by a process that stopped mid-send. Run on start."""
    result = await session.execute(
        update(OUTBOX).where(OUTBOX.c.status == "sending").values(status="pending")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def next_due_at(session: AsyncSession) -> datetime | None:
    statement = select(func.min(OutboxEntry.not_before)).where(OutboxEntry.status == "pending")
    return (await session.execute(statement)).scalar_one_or_none()


async def list_entries(
    session: AsyncSession, status: str | None = None, limit: int = 100
) -> Sequence[OutboxEntry]:
    statement = select(OutboxEntry).order_by(OutboxEntry.id.desc()).limit(limit)  # type: ignore[union-attr]
    if status is not None:
        statement = statement.where(OutboxEntry.status == status)
    return (await session.execute(statement)).scalars().all()


async def replies_since(session: AsyncSession, member_id: int, since: datetime) -> Sequence[str]:
    """The bodies of the replies queued to the member since `since`, newest first."""
    statement = (
        select(OutboxEntry.body)
        .where(
            OutboxEntry.member_id == member_id,
            OutboxEntry.route == "message",
            OutboxEntry.dedupe_key.startswith("reply:"),  # type: ignore[attr-defined]
            OutboxEntry.created_at >= since,
        )
        .order_by(OutboxEntry.id.desc())  # type: ignore[union-attr]
    )
    return (await session.execute(statement)).scalars().all()


async def mass_sends_since(session: AsyncSession, since: datetime) -> Counter[str]:
    """How many one-to-one mass sends (WeCom add_msg_template) each customer was queued
    since `since`, counting those not failed or held."""
    statement = select(OutboxEntry.meta).where(
        OutboxEntry.route == "mass_send", OutboxEntry.created_at >= since,
        OutboxEntry.status.not_in(("failed", "held")),  # type: ignore[attr-defined]
    )
    received: Counter[str] = Counter()
    for meta in (await session.execute(statement)).scalars():
        found = json.loads(meta or "{}")
        if found.get("chat_type") == "single":
            received.update(found.get("external_userid", ()))
    return received
