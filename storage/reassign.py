"""Handing work on when people change: a staff member leaves, or a customer is
transferred to a colleague. Open tasks follow the member; nothing done is rewritten."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Member, Staff, StaffTask


@dataclass(frozen=True, slots=True)
class Handover:
    tasks: int
    members: int
    to_staff_id: int | None


async def successor_of(session: AsyncSession, staff: Staff) -> Staff | None:
    """Who takes over from a staff member who leaves: the store's manager, else nobody
    (the work then shows as unassigned in the console)."""
    if staff.store_id is None:
        return None
    statement = (
        select(Staff)
        .where(Staff.store_id == staff.store_id, Staff.role == "manager", Staff.active.is_(True),  # type: ignore[attr-defined]
               Staff.id != staff.id)
        .order_by(Staff.id)  # type: ignore[arg-type]
        .limit(1)
    )
    return (await session.execute(statement)).scalars().first()


async def hand_over(session: AsyncSession, leaving: Staff, to: Staff | None) -> Handover:
    """Move every open task and every member of `leaving` to `to` (None: unassigned),
    and mark `leaving` inactive."""
    target = to.id if to is not None else None
    tasks = await session.execute(
        update(StaffTask).where(StaffTask.staff_id == leaving.id, StaffTask.status == "open").values(staff_id=target)
    )
    members = await session.execute(
        update(Member).where(Member.owner_staff_id == leaving.id).values(owner_staff_id=target)  # type: ignore[arg-type]
    )
    leaving.active = False
    session.add(leaving)
    return Handover(tasks.rowcount or 0, members.rowcount or 0, target)


async def follow_new_owner(session: AsyncSession, member_id: int, old_owner_id: int | None, new_owner_id: int) -> int:
    """A member transferred to a colleague: her open tasks move with her. Returns how many."""
    if old_owner_id == new_owner_id:
        return 0
    statement = update(StaffTask).where(StaffTask.member_id == member_id, StaffTask.status == "open")
    if old_owner_id is not None:
        statement = statement.where(StaffTask.staff_id == old_owner_id)
    else:
        statement = statement.where(StaffTask.staff_id.is_(None))  # type: ignore[union-attr]
    result = await session.execute(statement.values(staff_id=new_owner_id))
    return result.rowcount or 0
