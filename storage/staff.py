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


async def welcome_stores(
    session: AsyncSession, userids: Sequence[str], codes: Sequence[str]
) -> tuple[dict[str, tuple[int | None, str | None]], dict[str, tuple[int, str]]]:
    """For a batch of welcomes: each staff userid's store (id, name) and each store code's
    (id, name), in two statements."""
    staff: dict[str, tuple[int | None, str | None]] = {}
    if userids:
        rows = await session.execute(
            select(Staff.userid, Store.id, Store.name)
            .outerjoin(Store, Store.id == Staff.store_id)  # type: ignore[arg-type]
            .where(Staff.userid.in_(list(userids)))  # type: ignore[attr-defined]
        )
        staff = {userid: (store_id, name) for userid, store_id, name in rows.all()}
    stores: dict[str, tuple[int, str]] = {}
    if codes:
        rows = await session.execute(select(Store.code, Store.id, Store.name).where(Store.code.in_(list(codes))))  # type: ignore[attr-defined]
        stores = {code: (store_id, name) for code, store_id, name in rows.all()}
    return staff, stores


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


async def manager_of_store(session: AsyncSession, store_id: int) -> Staff | None:
    """The store's manager: its first active staff member with role manager."""
    statement = (select(Staff).where(Staff.store_id == store_id, Staff.role == "manager",
                                     Staff.active.is_(True))  # type: ignore[attr-defined]
                 .order_by(Staff.id).limit(1))  # type: ignore[arg-type]
    return (await session.execute(statement)).scalars().first()


async def responsible_staff(session: AsyncSession, owner_id: int | None, store_id: int | None,
                            default_userid: str | None) -> Staff | None:
    """Who answers for a member: her owner while active, else her store's manager, else
    the configured default staff member (when active); None when nobody is."""
    if owner_id is not None:
        owner = await session.get(Staff, owner_id)
        if owner is not None and owner.active:
            return owner
    if store_id is not None and (manager := await manager_of_store(session, store_id)) is not None:
        return manager
    if default_userid:
        fallback = await staff_by_userid(session, default_userid)
        if fallback is not None and fallback.active:
            return fallback
    return None
