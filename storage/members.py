"""Members and their platform identities."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Interaction, Member, MemberIdentity, Staff, Store

MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


async def member_by_identity(
    session: AsyncSession, platform: str, external_id: str
) -> Member | None:
    statement = (
        select(Member)
        .join(MemberIdentity, MemberIdentity.member_id == Member.id)  # type: ignore[arg-type]
        .where(MemberIdentity.platform == platform, MemberIdentity.external_id == external_id)
    )
    return (await session.execute(statement)).scalars().first()


async def resolve_member(
    session: AsyncSession, platform: str, external_id: str, name: str | None, now: datetime
) -> Member:
    """The member behind a platform identity, created on first contact."""
    member = await member_by_identity(session, platform, external_id)
    if member is not None:
        return member
    try:
        # A savepoint, so that losing a creation race to another process costs nothing.
        async with session.begin_nested():
            member = Member(name=name, member_since=now.date(), created_at=now, updated_at=now)
            session.add(member)
            await session.flush()
            assert member.id is not None
            session.add(MemberIdentity(member_id=member.id, platform=platform, external_id=external_id))
            await session.flush()
        return member
    except IntegrityError:
        found = await member_by_identity(session, platform, external_id)
        if found is None:
            raise
        return found


async def find_member(session: AsyncSession, reference: str) -> Member | None:
    """A member by our id, any platform id, or unionid."""
    if reference.isdigit():
        member = await session.get(Member, int(reference))
        if member is not None:
            return member
    statement = (
        select(Member)
        .outerjoin(MemberIdentity, MemberIdentity.member_id == Member.id)  # type: ignore[arg-type]
        .where(or_(MemberIdentity.external_id == reference, Member.unionid == reference))
        .order_by(Member.id)  # type: ignore[arg-type]
    )
    return (await session.execute(statement)).scalars().first()


async def identities_of(session: AsyncSession, member_id: int) -> Sequence[MemberIdentity]:
    statement = select(MemberIdentity).where(MemberIdentity.member_id == member_id)
    return (await session.execute(statement)).scalars().all()


@dataclass(frozen=True, slots=True)
class PlatformContact:
    external_id: str
    name: str | None
    store: str | None


async def contacts_on(
    session: AsyncSession, platform: str, name_contains: str = "", limit: int = 50
) -> list[PlatformContact]:
    """Members known on `platform`, most recently active first, optionally filtered by name."""
    last_seen = (
        select(Interaction.member_id, func.max(Interaction.at).label("last_at"))
        .group_by(Interaction.member_id)  # type: ignore[arg-type]
        .subquery()
    )
    statement = (
        select(MemberIdentity.external_id, Member.name, Store.name)
        .join(Member, Member.id == MemberIdentity.member_id)  # type: ignore[arg-type]
        .outerjoin(Store, Store.id == Member.store_id)  # type: ignore[arg-type]
        .outerjoin(last_seen, last_seen.c.member_id == Member.id)
        .where(MemberIdentity.platform == platform)
        .order_by(last_seen.c.last_at.desc().nulls_last(), Member.id)
        .limit(limit)
    )
    if name_contains:
        pattern = f"%{name_contains}%"
        statement = statement.where(
            or_(Member.name.like(pattern), MemberIdentity.external_id.like(pattern))  # type: ignore[union-attr, attr-defined]
        )
    rows = (await session.execute(statement)).all()
    return [PlatformContact(external_id=r[0], name=r[1], store=r[2]) for r in rows]


async def store_and_owner(
    session: AsyncSession, member: Member
) -> tuple[Store | None, Staff | None]:
    store = await session.get(Store, member.store_id) if member.store_id else None
    owner = await session.get(Staff, member.owner_staff_id) if member.owner_staff_id else None
    return store, owner


def masked_phone(phone: str | None) -> str | None:
    """The phone as people may see it in logs and listings: 138****5678."""
    if not phone:
        return None
    digits = phone.strip()
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


def mask_phones(text: str | None, phone: str | None = None) -> str:
    """Free text (messages, remarks) with mobile numbers, and her own phone, masked."""
    if not text:
        return ""
    if phone and len(phone.strip()) >= 7:
        text = text.replace(phone.strip(), masked_phone(phone) or "")
    return MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)


async def search_members(
    session: AsyncSession,
    query: str,
    *,
    owner_staff_id: int | None = None,
    store_id: int | None = None,
    limit: int = 5,
) -> Sequence[Member]:
    """Members whose name contains `query`, or whose phone ends with it (digits), among
    those the staff member owns or, given `store_id`, of that store."""
    query = query.strip()
    matches = Member.phone.endswith(query) if query.isdigit() else Member.name.contains(query)  # type: ignore[union-attr]
    scope = [Member.owner_staff_id == owner_staff_id]
    if store_id is not None:
        scope.append(Member.store_id == store_id)
    statement = select(Member).where(matches, or_(*scope)).order_by(Member.name, Member.id).limit(limit)  # type: ignore[arg-type]
    return (await session.execute(statement)).scalars().all()
