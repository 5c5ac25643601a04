"""Staff and stores."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.get_or_create import get_or_create
from storage.models import Staff, Store


async def staff_by_userid(session: AsyncSession, userid: str) -> Staff | None:
    return (await session.execute(select(Staff).where(Staff.userid == userid))).scalars().first()


async def ensure_staff(session: AsyncSession, userid: str) -> Staff:
    """The staff row for a platform userid, created (named by the userid) on first sight."""
    return await get_or_create(session, select(Staff).where(Staff.userid == userid), lambda: Staff(userid=userid, name=userid))


async def store_by_code(session: AsyncSession, code: str) -> Store | None:
    return (await session.execute(select(Store).where(Store.code == code))).scalars().first()


async def store_managers(session: AsyncSession) -> dict[str, Staff]:
    """Each store's manager (an active staff member with role manager), by store name."""
    statement = (
        select(Store.name, Staff)
        .join(Staff, Staff.store_id == Store.id)  # type: ignore[arg-type]
        .where(Staff.role == "manager", Staff.active.is_(True))  # type: ignore[attr-defined]
        .order_by(Staff.id)  # type: ignore[arg-type]
    )
    found: dict[str, Staff] = {}
    for name, staff in (await session.execute(statement)).all():
        found.setdefault(name, staff)
    return found


async def active_staff_of_stores(session: AsyncSession, codes: Sequence[str]) -> list[str]:
    """The userids of the active staff of the stores with these codes."""
    statement = (
        select(Staff.userid).join(Store, Store.id == Staff.store_id)  # type: ignore[arg-type]
        .where(Store.code.in_(codes), Staff.active.is_(True))  # type: ignore[attr-defined]
        .order_by(Staff.userid)
    )
    return list((await session.execute(statement)).scalars().all())
