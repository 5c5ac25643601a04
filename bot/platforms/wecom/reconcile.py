"""Reconciliation: WeCom's change callbacks may be lost or arrive out of order, so each
staff member's customer list is re-read and our members repaired to match it.

Missing members are created (through the same identity upsert, so never twice), owners
and profiles refreshed, and members who vanished from every list they were on are
recorded as churned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.contacts import apply_contact
from bot.platforms.wecom.updates import PLATFORM
from storage.engine import SessionFactory
from storage.models import Member, MemberIdentity, Staff, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    staff: int
    contacts: int
    created: int
    churned: int


async def reconcile_contacts(
    client: WeComClient, sessions: SessionFactory, clock: Callable[[], datetime] = utcnow
) -> ReconcileReport:
    now = clock()
    follow_users = (await client.call("GET", "/cgi-bin/externalcontact/get_follow_user_list")).get("follow_user", [])
    async with sessions() as session:
        known_before = set((await session.execute(
            select(MemberIdentity.external_id).where(MemberIdentity.platform == PLATFORM)
        )).scalars().all())
    seen: set[str] = set()
    async for item in client.iter_contacts_by_user(follow_users):
        contact = item["external_contact"]
        async with sessions() as session, session.begin():
            await apply_contact(session, contact, [item.get("follow_info", {})], now)
        seen.add(str(contact["external_userid"]))
    churned = await _record_vanished(sessions, follow_users, seen, now)
    report = ReconcileReport(len(follow_users), len(seen), len(seen - known_before), churned)
    log.info("WeCom reconciliation: %s", report)
    return report


async def _record_vanished(sessions: SessionFactory, follow_users: list[str], seen: set[str], now: datetime) -> int:
    """Members owned by a staff member we just read in full, but no longer on any list."""
    async with sessions() as session, session.begin():
        statement = (
            select(Member, MemberIdentity.external_id)
            .join(MemberIdentity, MemberIdentity.member_id == Member.id)  # type: ignore[arg-type]
            .join(Staff, Staff.id == Member.owner_staff_id)  # type: ignore[arg-type]
            .where(MemberIdentity.platform == PLATFORM, Staff.userid.in_(follow_users), Member.left_at.is_(None))  # type: ignore[attr-defined, union-attr]
        )
        churned = 0
        for member, external_id in (await session.execute(statement)).all():
            if external_id not in seen:
                member.left_at, member.left_reason = now, "missing_from_customer_list"
                session.add(member)
                churned += 1
        return churned
