"""Numbers behind the console's staff page: who works where, their open work, how the
tasks of the last weeks went, and whom they look after. Every count is a GROUP BY: one
row per staff member (or per staff member and due day), never one query per person."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Member, Staff, StaffTask, Store
from storage.tasks import done_in_time


def _count_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


@dataclass(frozen=True, slots=True)
class StaffEntry:
    id: int
    userid: str
    name: str
    role: str  # staff | manager
    active: bool
    store_id: int | None
    store: str | None  # the store's name


async def staff_entries(session: AsyncSession) -> list[StaffEntry]:
    """Every staff member with her store, by store, managers first, then name."""
    statement = (
        select(Staff.id, Staff.userid, Staff.name, Staff.role, Staff.active, Staff.store_id, Store.name)
        .outerjoin(Store, Store.id == Staff.store_id)  # type: ignore[arg-type]
        .order_by(Store.name, Staff.store_id, Staff.role != "manager", Staff.name, Staff.id)  # type: ignore[arg-type]
    )
    return [StaffEntry(*row) for row in await session.execute(statement)]


@dataclass(frozen=True, slots=True)
class OpenWork:
    open: int
    overdue: int  # open after its due day


async def open_work(session: AsyncSession, today: date) -> dict[int | None, OpenWork]:
    """Open and overdue tasks per staff id; unassigned tasks under None."""
    statement = (
        select(StaffTask.staff_id, func.count(), _count_if(StaffTask.due_date < today))
        .where(StaffTask.status == "open")
        .group_by(StaffTask.staff_id)
    )
    return {staff: OpenWork(int(n), int(late)) for staff, n, late in await session.execute(statement)}


@dataclass(frozen=True, slots=True)
class DueGroup:
    """Tasks of one staff member due on one day with one status."""

    staff_id: int | None
    due: date
    status: str  # open | done | skipped
    count: int
    on_time: int  # of those done, done by the end of the due day (local time)


async def due_groups(session: AsyncSession, first: date, last: date, zone: ZoneInfo) -> list[DueGroup]:
    """Tasks due first..last (inclusive) grouped by staff, due day and status."""
    statement = (
        select(
            StaffTask.staff_id, StaffTask.due_date, StaffTask.status, func.count(),
            _count_if(done_in_time(first, last, zone)),
        )
        .where(StaffTask.due_date >= first, StaffTask.due_date <= last)
        .group_by(StaffTask.staff_id, StaffTask.due_date, StaffTask.status)
    )
    return [DueGroup(staff, due, status, int(n), int(on_time))
            for staff, due, status, n, on_time in await session.execute(statement)]


@dataclass(frozen=True, slots=True)
class Owned:
    current: int  # members still with us
    left: int  # members who ended the relationship, still recorded as hers


async def owned_members(session: AsyncSession) -> dict[int | None, Owned]:
    """Members per owner staff id; members nobody owns under None."""
    left = Member.left_at.is_not(None)  # type: ignore[union-attr]
    statement = (  # from the (owner_staff_id, left_at) index alone
        select(Member.owner_staff_id, func.count(), _count_if(left))
        .group_by(Member.owner_staff_id)
    )
    return {owner: Owned(int(n) - int(gone), int(gone)) for owner, n, gone in await session.execute(statement)}
