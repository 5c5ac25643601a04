"""Staff and stores."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Staff, Store


async def staff_by_userid(session: AsyncSession, userid: str) -> Staff | None:
    return (await session.execute(select(Staff).where(Staff.userid == userid))).scalars().first()


async def ensure_staff(session: AsyncSession, userid: str) -> Staff:
    """The staff row for a platform userid, created (named by the userid) on first sight."""
    staff = await staff_by_userid(session, userid)
    if staff is not None:
        return staff
    try:
        async with session.begin_nested():
            staff = Staff(userid=userid, name=userid)
            session.add(staff)
            await session.flush()
        return staff
    except IntegrityError:
        found = await staff_by_userid(session, userid)
        assert found is not None
        return found


async def store_by_code(session: AsyncSession, code: str) -> Store | None:
    return (await session.execute(select(Store).where(Store.code == code))).scalars().first()
