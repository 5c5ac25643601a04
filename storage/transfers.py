"""Customers handed to a colleague in WeCom (在职继承, `externalcontact/transfer_customer`):
the outbox rows a bulk transfer queues, WeCom's answer for each customer noted on its
row, and what became of a bulk action's transfers, for the console's action log.

WeCom takes at most 100 customers per call, all of one staff member (the handover), so
a bulk action queues one row per handover and 100 customers. Each row keeps its own
answer: rows sent side by side never write the same record. An errcode of 0 means the
transfer started; WeCom moves her 24 hours later unless she refuses (`transfer_fail`),
and the contact callbacks then move her in our records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Member, MemberIdentity, OutboxEntry, Staff
from storage.outbox import NewOutboxMessage

TRANSFER_ROUTE = "transfer_customer"
PER_CALL = 100  # external_userid: at most 100 customers per call
MESSAGE_MAX = 200  # transfer_success_msg: at most 200 characters
_KEY = "transfer:{bulk}:"


@dataclass(frozen=True, slots=True)
class Customer:
    member_id: int
    external_userid: str
    handover: str  # the staff member she is with now (WeCom userid)


async def wecom_customers(session: AsyncSession, member_ids: Sequence[int]) -> dict[int, Customer]:
    """Of these members, the WeCom customers of an active staff member (their owner): the
    ones a transfer must go through WeCom for, by member id."""
    statement = (
        select(Member.id, MemberIdentity.external_id, Staff.userid)
        .join(MemberIdentity, MemberIdentity.member_id == Member.id)  # type: ignore[arg-type]
        .join(Staff, Staff.id == Member.owner_staff_id)  # type: ignore[arg-type]
        .where(Member.id.in_(member_ids), MemberIdentity.platform == "wecom", Staff.active.is_(True))  # type: ignore[union-attr,attr-defined]
        .order_by(MemberIdentity.id)  # type: ignore[arg-type]
    )
    found: dict[int, Customer] = {}
    for member_id, external_userid, userid in (await session.execute(statement)).all():
        found.setdefault(member_id, Customer(member_id, external_userid, userid))
    return found


def transfer_rows(bulk_id: int, takeover: str, customers: Sequence[Customer], message: str = "") -> list[NewOutboxMessage]:
    """The outbox rows moving `customers` to `takeover`: one per handover and 100 customers."""
    by_handover: dict[str, list[Customer]] = {}
    for customer in customers:
        by_handover.setdefault(customer.handover, []).append(customer)
    rows = []
    for handover, theirs in sorted(by_handover.items()):
        for n, start in enumerate(range(0, len(theirs), PER_CALL)):
            chunk = theirs[start:start + PER_CALL]
            meta: dict[str, object] = {
                "handover": handover, "takeover": takeover, "customers": [c.external_userid for c in chunk],
                "members": {c.external_userid: c.member_id for c in chunk},
            }
            if message:
                meta["message"] = message
            rows.append(NewOutboxMessage(
                f"{_KEY.format(bulk=bulk_id)}{handover}:{n}", "wecom", handover, "request", "",
                route=TRANSFER_ROUTE, meta=json.dumps(meta, ensure_ascii=False),
            ))
    return rows


async def record_results(session: AsyncSession, outbox_id: int, results: Mapping[str, int]) -> None:
    """Note WeCom's errcode for each customer (0: the transfer started) on the row."""
    row = await session.get(OutboxEntry, outbox_id)
    if row is None:
        return
    meta = json.loads(row.meta or "{}")
    meta["results"] = dict(results)
    await session.execute(
        update(OutboxEntry).where(OutboxEntry.id == outbox_id)  # type: ignore[arg-type]
        .values(meta=json.dumps(meta, ensure_ascii=False))
    )


async def started_takeover(session: AsyncSession, external_userid: str, handover: str) -> str | None:
    """Whom the newest transfer WeCom started for this customer of `handover` hands her
    to (None: we asked for none). WeCom's removal of her from `handover` says it is done."""
    statement = (
        select(OutboxEntry.meta)
        .where(OutboxEntry.route == TRANSFER_ROUTE, OutboxEntry.recipient == handover,  # type: ignore[arg-type]
               OutboxEntry.status == "sent", OutboxEntry.meta.contains(f'"{external_userid}"', autoescape=True))  # type: ignore[attr-defined]
        .order_by(OutboxEntry.id.desc())  # type: ignore[union-attr]
    )
    for raw in (await session.execute(statement)).scalars():
        meta = json.loads(raw or "{}")
        if (meta.get("results") or {}).get(external_userid) == 0 and meta.get("takeover"):
            return str(meta["takeover"])
    return None


@dataclass(frozen=True, slots=True)
class Refused:
    member_id: int
    name: str | None
    errcode: int | None  # None: the whole call failed (see `error`)
    error: str = ""


@dataclass(slots=True)
class Outcome:
    """A bulk action's transfers in WeCom, as they stand."""

    started: int = 0  # accepted by WeCom: moving within 24 hours unless she refuses
    waiting: int = 0  # not answered yet (queued, or being retried)
    refused: list[Refused] = field(default_factory=list)


async def transfer_outcomes(session: AsyncSession, bulk_ids: Sequence[int]) -> dict[int, Outcome]:
    """Each bulk action's transfers (bulk actions that queued none are left out)."""
    found: dict[int, Outcome] = {}
    names: dict[int, str | None] = {}
    pending_names: list[tuple[Outcome, int, int | None, str]] = []
    for bulk_id in bulk_ids:
        rows = (await session.execute(
            select(OutboxEntry).where(OutboxEntry.dedupe_key.startswith(_KEY.format(bulk=bulk_id)))  # type: ignore[attr-defined]
            .where(OutboxEntry.route == TRANSFER_ROUTE).order_by(OutboxEntry.id)  # type: ignore[arg-type]
        )).scalars().all()
        if not rows:
            continue
        outcome = found[bulk_id] = Outcome()
        for row in rows:
            meta = json.loads(row.meta or "{}")
            members: dict[str, int] = meta.get("members") or {}
            results: dict[str, int] = meta.get("results") or {}
            if row.status == "failed" and not results:
                for member_id in members.values():
                    pending_names.append((outcome, member_id, None, row.last_error or ""))
                continue
            if not results:
                outcome.waiting += len(members)
                continue
            for external_userid, member_id in members.items():
                errcode = results.get(external_userid)
                if errcode == 0:
                    outcome.started += 1
                else:
                    pending_names.append((outcome, member_id, errcode, ""))
    ids = sorted({member_id for _, member_id, _, _ in pending_names})
    if ids:
        statement = select(Member.id, Member.name).where(Member.id.in_(ids))  # type: ignore[union-attr,attr-defined]
        names = {mid: name for mid, name in (await session.execute(statement)).all()}
    for outcome, member_id, errcode, error in pending_names:
        outcome.refused.append(Refused(member_id, names.get(member_id), errcode, error))
    return found
