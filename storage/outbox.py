"""The outbox: every message to a member or staff member, with a unique dedupe key.

Rows move pending → sending → sent | failed | held | expired, or wait as deferred (quiet
hours) until `not_before`. `sending` is a claim with an owner (`claimed_by`, one id per
process) and an expiry (`claim_expires_at`) that the owner renews while it sends. A
process that dies mid-send leaves its claims to lapse; `reap_expired` (run by every
delivery loop) then returns them to `pending`, marked as of unknown outcome, so senders
that cannot ask the platform what happened decide whether to send again. Nothing is ever
released because a process starts: other live processes' claims stay theirs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialects import SqliteInsertIgnoringConflicts, insert_ignoring_conflicts, sqlite_utc_text
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


_OUTBOX_ON_SQLITE = SqliteInsertIgnoringConflicts(OUTBOX, (
    "dedupe_key", "platform", "recipient", "member_id", "staff_id", "kind", "route", "meta", "body", "status",
    "attempts", "not_before", "created_at"), ["dedupe_key"])


async def enqueue(
    session: AsyncSession, messages: Sequence[NewOutboxMessage], now: datetime
) -> None:
    """Queue messages; one whose dedupe key is already queued (or sent) is dropped.
    Each carries the current request id in its meta (storage/tracing.py)."""
    if not messages:
        return
    if session.bind.dialect.name == "sqlite":  # thousands at once (the care scan): on the driver
        created = sqlite_utc_text(now)
        await _OUTBOX_ON_SQLITE.run(session, [
            (m.dedupe_key, m.platform, m.recipient, m.member_id, m.staff_id, m.kind, m.route, stamped(m.meta), m.body,
             "pending", 0, sqlite_utc_text(m.not_before) if m.not_before else created, created)
            for m in messages
        ])
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


# What a lapsed claim leaves in `last_error`: the send may or may not have reached the platform.
UNKNOWN_OUTCOME = "outcome unknown"
# Routes claimed ahead of everything else: a welcome code lives 20 s.
URGENT_ROUTES = ("welcome",)


async def claim_due(
    session: AsyncSession, now: datetime, limit: int, owner: str = "", lease: timedelta = timedelta(minutes=1),
    *, skip_routes: Sequence[str] = (), only_routes: Sequence[str] = (),
    room: Callable[[str], int] | None = None,
) -> Sequence[OutboxEntry]:
    """Claim due rows for `owner` until `now + lease`: welcomes first, then the oldest due.
    `skip_routes` leaves out routes whose senders are all busy; `only_routes` claims just
    those; `room(route)` caps how many of a route are taken (the rest of the rows read
    stay pending, free for others). On PostgreSQL, claimants skip each other's locked rows."""
    urgent = case((OutboxEntry.route.in_(URGENT_ROUTES), 0), else_=1)  # type: ignore[attr-defined]
    statement = (
        select(OutboxEntry)
        .where(OutboxEntry.status.in_(("pending", "deferred")), OutboxEntry.not_before <= now)  # type: ignore[attr-defined]
        .order_by(urgent, OutboxEntry.not_before, OutboxEntry.id)  # type: ignore[arg-type]
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if skip_routes:
        statement = statement.where(OutboxEntry.route.not_in(skip_routes))  # type: ignore[attr-defined]
    if only_routes:
        statement = statement.where(OutboxEntry.route.in_(only_routes))  # type: ignore[attr-defined]
    rows = list((await session.execute(statement)).scalars().all())
    if room is not None:
        left: dict[str, int] = {}
        taken = []
        for row in rows:
            if left.setdefault(row.route, room(row.route)) > 0:
                left[row.route] -= 1
                taken.append(row)
        rows = taken
    for row in rows:
        row.status = "sending"
        row.attempts += 1
        row.claimed_by = owner
        row.claim_expires_at = now + lease
        session.add(row)
    return rows


async def renew_claims(session: AsyncSession, owner: str, ids: Sequence[int], until: datetime) -> int:
    """Extend `owner`'s claims on rows it is still sending; returns how many it still holds."""
    if not ids:
        return 0
    result = await session.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(ids), OUTBOX.c.status == "sending", OUTBOX.c.claimed_by == owner)
        .values(claim_expires_at=until)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def reap_expired(session: AsyncSession, now: datetime) -> int:
    """Return `sending` rows whose claim lapsed (their process died or froze) to `pending`,
    due now, their outcome marked unknown. A row claimed before claims had an expiry
    (NULL) counts as lapsed."""
    lapsed = (OUTBOX.c.claim_expires_at < now) | OUTBOX.c.claim_expires_at.is_(None)
    result = await session.execute(
        update(OUTBOX)
        .where(OUTBOX.c.status == "sending", lapsed)
        .values(
            status="pending", not_before=now, claimed_by=None, claim_expires_at=None,
            last_error=func.coalesce(OUTBOX.c.claimed_by, "a process") + " stopped mid-send: " + UNKNOWN_OUTCOME,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _held_by(owner: str | None):  # noqa: ANN202
    """The row is still ours: a claim that lapsed and was reaped is no longer recorded."""
    return (OUTBOX.c.claimed_by == owner) if owner is not None else (OUTBOX.c.id == OUTBOX.c.id)


_UNCLAIMED = {"claimed_by": None, "claim_expires_at": None}


async def _set(session: AsyncSession, entry_id: int, owner: str | None, **values: object) -> bool:
    result = await session.execute(
        update(OUTBOX).where(OUTBOX.c.id == entry_id, _held_by(owner)).values(**values, **_UNCLAIMED)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def mark_sent(
    session: AsyncSession, entry_id: int, now: datetime, platform_msg_id: str | None, owner: str | None = None
) -> bool:
    """Each mark_* returns False when `owner` no longer holds the row (nothing changed)."""
    return await _set(session, entry_id, owner, status="sent", sent_at=now, platform_msg_id=platform_msg_id, last_error=None)


async def mark_sent_many(
    session: AsyncSession, sent: Sequence[tuple[int, str | None]], now: datetime, owner: str | None = None
) -> set[int]:
    """`mark_sent` for many rows (id, the platform's message id) in one statement; returns
    the ids still held by `owner`, the ones marked."""
    if not sent:
        return set()
    msg_ids = {entry_id: msg_id for entry_id, msg_id in sent if msg_id is not None}
    statement = (
        update(OUTBOX)
        .where(OUTBOX.c.id.in_([entry_id for entry_id, _ in sent]), _held_by(owner))
        .values(status="sent", sent_at=now, last_error=None, **_UNCLAIMED,
                platform_msg_id=case(msg_ids, value=OUTBOX.c.id, else_=None) if msg_ids else None)
        .returning(OUTBOX.c.id)
    )
    return set((await session.execute(statement)).scalars())


async def mark_failed(session: AsyncSession, entry_id: int, error: str, owner: str | None = None) -> bool:
    return await _set(session, entry_id, owner, status="failed", last_error=error)


async def mark_expired(session: AsyncSession, entry_id: int, reason: str, owner: str | None = None) -> bool:
    """Too late to send at all (a welcome code lives 20 s); the reason stays on the row."""
    return await _set(session, entry_id, owner, status="expired", last_error=reason)


async def mark_held(session: AsyncSession, entry_id: int, reason: str, owner: str | None = None) -> bool:
    """Never to be sent (e.g. the member opted out); the reason stays on the row."""
    return await _set(session, entry_id, owner, status="held", last_error=reason)


async def mark_deferred(
    session: AsyncSession, entry_id: int, until: datetime, reason: str, owner: str | None = None
) -> bool:
    """Not now (quiet hours): sent when `until` comes, the reason on the row meanwhile."""
    return await _set(session, entry_id, owner, status="deferred", not_before=until, last_error=reason)


async def marketing_sent_since(session: AsyncSession, member_id: int, since: datetime) -> int:
    statement = select(func.count()).where(
        OutboxEntry.member_id == member_id, OutboxEntry.kind == "marketing",
        OutboxEntry.status == "sent", OutboxEntry.sent_at >= since,  # type: ignore[operator]
    )
    return int((await session.execute(statement)).scalar_one())


async def retry_later(
    session: AsyncSession, entry_id: int, at: datetime, error: str, owner: str | None = None
) -> bool:
    return await _set(session, entry_id, owner, status="pending", not_before=at, last_error=error)


async def release(session: AsyncSession, owner: str, ids: Sequence[int]) -> int:
    """Hand back rows `owner` claimed but never started to send (it is stopping)."""
    if not ids:
        return 0
    result = await session.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(ids), OUTBOX.c.status == "sending", OUTBOX.c.claimed_by == owner)
        .values(status="pending", attempts=OUTBOX.c.attempts - 1, **_UNCLAIMED)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def next_due_at(session: AsyncSession, skip_routes: Sequence[str] = ()) -> datetime | None:
    """When the next row of a route not in `skip_routes` falls due."""
    statement = select(func.min(OutboxEntry.not_before)).where(OutboxEntry.status == "pending")
    if skip_routes:
        statement = statement.where(OutboxEntry.route.not_in(skip_routes))  # type: ignore[attr-defined]
    return (await session.execute(statement)).scalar_one_or_none()


async def next_lapse_at(session: AsyncSession) -> datetime | None:
    """When the next claim lapses (for the reaper)."""
    statement = select(func.min(OutboxEntry.claim_expires_at)).where(OutboxEntry.status == "sending")
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


@dataclass(frozen=True, slots=True)
class SentMassSend:
    """A mass send WeCom took (it has a msgid): whose share it is and what it was for."""

    outbox_id: int
    msgid: str
    sender: str  # the staff member's userid, who confirms it in her client
    staff_id: int | None
    entry: str  # the calendar entry, "" if none
    chat_type: str


async def mass_sends_to_read(session: AsyncSession, since: datetime) -> list[SentMassSend]:
    """Mass sends created since `since` that WeCom took (status sent, a msgid noted),
    whose results are still worth reading back."""
    statement = select(OutboxEntry).where(
        OutboxEntry.route == "mass_send", OutboxEntry.status == "sent", OutboxEntry.created_at >= since,
    ).order_by(OutboxEntry.id)  # type: ignore[arg-type]
    found = []
    for row in (await session.execute(statement)).scalars():
        meta = json.loads(row.meta or "{}")
        msgid = meta.get("msgid") or row.platform_msg_id
        if row.id is not None and msgid:
            found.append(SentMassSend(row.id, str(msgid), row.recipient, row.staff_id, str(meta.get("entry") or ""),
                                      str(meta.get("chat_type") or "single")))
    return found


async def mass_send_msgids_taken(session: AsyncSession, msgids: Sequence[str], except_id: int) -> set[str]:
    """Which of these WeCom mass-send msgids other outbox rows already stand for."""
    statement = select(OutboxEntry.platform_msg_id).where(
        OutboxEntry.route == "mass_send", OutboxEntry.id != except_id,
        OutboxEntry.platform_msg_id.in_(msgids),  # type: ignore[union-attr]
    )
    return {str(m) for m in (await session.execute(statement)).scalars()}
