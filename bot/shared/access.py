"""Who is looking, and what they may see: the store rules the console and the WeCom
sidebar both follow.

Operators see everything. A staff member sees the tasks assigned to her and the members
she owns; a store manager sees the whole store's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Member, StaffTask
from storage.staff import staff_by_userid
from storage.tasks import in_store


@dataclass(frozen=True, slots=True)
class Viewer:
    login: str
    role: Literal["operator", "staff"]
    staff_id: int | None = None
    store_id: int | None = None  # set for a store manager only
    name: str = ""
    # Signed in by a task link: that task's page and its done/skip (or, from a list link,
    # her open tasks) and nothing else of the console.
    by_link: bool = False

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    def member_scope(self) -> ColumnElement[bool]:
        """A WHERE clause on members: those this viewer may read."""
        if self.is_operator:
            return true()
        if self.staff_id is None:
            return false()
        owned = Member.owner_staff_id == self.staff_id
        return or_(owned, Member.store_id == self.store_id) if self.store_id is not None else owned

    def may_read_member(self, member: Member) -> bool:
        if self.is_operator:
            return True
        if self.staff_id is not None and member.owner_staff_id == self.staff_id:
            return True
        return self.store_id is not None and member.store_id == self.store_id

    async def may_see_member(self, session: AsyncSession, member: Member) -> bool:
        """`may_read_member`, or a task about the member is hers (a hand-off routed to
        her from a member who has no owner yet, answered or not)."""
        if self.may_read_member(member):
            return True
        if self.staff_id is None or member.id is None:
            return False
        statement = select(StaffTask.id).where(StaffTask.member_id == member.id,
                                               StaffTask.staff_id == self.staff_id).limit(1)
        return (await session.execute(statement)).first() is not None

    async def may_act_on_task(self, session: AsyncSession, task: StaffTask) -> bool:
        if self.is_operator or (self.staff_id is not None and task.staff_id == self.staff_id):
            return True
        return await in_store(session, task, self.store_id)


async def staff_viewer(session: AsyncSession, login: str, staff_userid: str) -> Viewer | None:
    """The viewer for a staff login, or None when that staff member is unknown or has left."""
    staff = await staff_by_userid(session, staff_userid)
    if staff is None or not staff.active:
        return None
    store = staff.store_id if staff.role == "manager" else None
    return Viewer(login, "staff", staff.id, store, staff.name)
