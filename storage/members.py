"""Members and their platform identities."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Interaction, Member, MemberIdentity, Staff, Store
from storage.tables import IDENTITIES, MEMBERS, STORES

MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
# A mobile number as people write it: an optional +86 / 0086 / 86, then 11 digits (ASCII
# or full-width) that spaces, dashes or dots may separate — `139-1234-5678`,
# `139 1234 5678`, `１３９１２３４５６７８`, `+86 139…`. Every digit is required and the
# separators are no digits, so matching stays linear.
_SEPARATOR = r"[\s\-.\u00b7\u2010-\u2015\uff0d\uff0e()\uff08\uff09]{0,2}"
SPELT_MOBILE = re.compile(
    rf"(?<!\d)(?:(?:[+\uff0b]|0{{2}}|\uff10{{2}})\s*)?(?:[8\uff18][6\uff16]{_SEPARATOR})?(?:\d{_SEPARATOR}){{10}}\d(?!\d)"
)
PHONE_TAIL_DIGITS = 4  # searches by phone take exactly its last four digits (shown unmasked anyway)


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


@dataclass(frozen=True, slots=True)
class KnownMember:
    id: int
    name: str | None
    store_name: str | None


async def resolve_members(
    session: AsyncSession, platform: str, external_ids: Sequence[str], now: datetime
) -> dict[str, KnownMember]:
    """`resolve_member` for many identities at once, in a few set-based statements (the
    welcome path takes hundreds a second). Call inside a transaction holding the inbox
    claim lock, which keeps other processes from creating the same members meanwhile."""
    wanted = list(dict.fromkeys(external_ids))
    found = await _members_by_identity(session, platform, wanted)
    missing = [external_id for external_id in wanted if external_id not in found]
    if missing:
        created = await session.execute(
            insert(MEMBERS).returning(MEMBERS.c.id, sort_by_parameter_order=True),
            [{"member_since": now.date(), "created_at": now, "updated_at": now} for _ in missing],
        )
        ids = [row[0] for row in created.all()]
        await session.execute(insert(IDENTITIES), [
            {"member_id": member_id, "platform": platform, "external_id": external_id, "created_at": now}
            for member_id, external_id in zip(ids, missing, strict=True)
        ])
        found.update({external_id: KnownMember(member_id, None, None) for member_id, external_id in zip(ids, missing)})
    return found


async def _members_by_identity(
    session: AsyncSession, platform: str, external_ids: Sequence[str]
) -> dict[str, KnownMember]:
    statement = (
        select(IDENTITIES.c.external_id, MEMBERS.c.id, MEMBERS.c.name, STORES.c.name)
        .join(MEMBERS, MEMBERS.c.id == IDENTITIES.c.member_id)
        .outerjoin(STORES, STORES.c.id == MEMBERS.c.store_id)
        .where(IDENTITIES.c.platform == platform, IDENTITIES.c.external_id.in_(list(external_ids)))
    )
    return {row[0]: KnownMember(*row[1:]) for row in (await session.execute(statement)).all()}


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
    """Free text (messages, remarks) with mobile numbers, however spelt, and her own
    phone, masked."""
    if not text:
        return ""
    if phone and len(phone.strip()) >= 7:
        text = text.replace(phone.strip(), masked_phone(phone) or "")
    return SPELT_MOBILE.sub(_masked_mobile, text)


def _masked_mobile(found: re.Match[str]) -> str:
    digits = "".join(c for c in unicodedata.normalize("NFKC", found.group()) if c.isascii() and c.isdigit())
    if len(digits) > 11:
        digits = digits.removeprefix("00").removeprefix("86")
    if not MOBILE.fullmatch(digits):
        return found.group()  # eleven digits, but no mobile number: as written
    return f"{digits[:3]}****{digits[-4:]}"


def phone_tail(query: str) -> str | None:
    """The last four digits of a phone a search asks for (ASCII or full-width, spaces and
    dashes allowed), or None when `query` is not that. Longer tails are refused: each
    extra digit would read one more of a masked number."""
    digits = re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", query))
    return digits if re.fullmatch(rf"[0-9]{{{PHONE_TAIL_DIGITS}}}", digits) else None


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
    tail = phone_tail(query)
    if tail is None and re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", query)).isdigit():
        return []  # digits, but not the last four: never a probe of the masked middle
    matches = Member.phone.endswith(tail) if tail else Member.name.contains(query, autoescape=True)  # type: ignore[union-attr]
    scope = [Member.owner_staff_id == owner_staff_id]
    if store_id is not None:
        scope.append(Member.store_id == store_id)
    statement = select(Member).where(matches, or_(*scope)).order_by(Member.name, Member.id).limit(limit)  # type: ignore[arg-type]
    return (await session.execute(statement)).scalars().all()
