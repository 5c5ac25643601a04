"""Staff tasks: prompts for a person to act, each created once per occasion."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialects import SqliteInsertIgnoringConflicts, insert_ignoring_conflicts, sqlite_date_text, sqlite_utc_text
from storage.engagement import day_bounds
from storage.models import Member, Staff, StaffTask, Store
from storage.outcomes import record_task_touch
from storage.tables import TASKS


@dataclass(frozen=True, slots=True)
class NewTask:
    dedupe_key: str
    kind: str
    title: str
    due_date: date
    staff_id: int | None = None
    member_id: int | None = None
    body: str = ""


_TASKS_ON_SQLITE = SqliteInsertIgnoringConflicts(TASKS, (
    "dedupe_key", "staff_id", "member_id", "kind", "title", "body", "due_date", "status", "created_at"), ["dedupe_key"])


async def create_tasks(session: AsyncSession, tasks: Sequence[NewTask], now: datetime) -> None:
    """Create many tasks in one statement; those whose dedupe key exists are skipped."""
    if tasks and session.bind.dialect.name == "sqlite":  # thousands at once (the care scan): on the driver
        created = sqlite_utc_text(now)
        await _TASKS_ON_SQLITE.run(session, [
            (t.dedupe_key, t.staff_id, t.member_id, t.kind, t.title, t.body, sqlite_date_text(t.due_date), "open", created)
            for t in tasks
        ])
    elif tasks:
        await session.execute(insert_ignoring_conflicts(TASKS, session.bind.dialect.name, ["dedupe_key"]), [
            {"dedupe_key": t.dedupe_key, "staff_id": t.staff_id, "member_id": t.member_id, "kind": t.kind,
             "title": t.title, "body": t.body, "due_date": t.due_date, "status": "open", "created_at": now}
            for t in tasks
        ])


async def create_task(session: AsyncSession, task: NewTask, now: datetime) -> StaffTask:
    """Create the task unless one with the same dedupe key exists; returns the task."""
    statement = insert_ignoring_conflicts(TASKS, session.bind.dialect.name, ["dedupe_key"]).values(
        dedupe_key=task.dedupe_key, staff_id=task.staff_id, member_id=task.member_id, kind=task.kind,
        title=task.title, body=task.body, due_date=task.due_date, status="open", created_at=now,
    )
    await session.execute(statement)
    found = await session.execute(select(StaffTask).where(StaffTask.dedupe_key == task.dedupe_key))
    return found.scalars().one()


async def open_task_for(session: AsyncSession, member_id: int, kind: str) -> StaffTask | None:
    statement = (
        select(StaffTask)
        .where(StaffTask.member_id == member_id, StaffTask.kind == kind, StaffTask.status == "open")
        .order_by(StaffTask.id.desc())  # type: ignore[union-attr]
        .limit(1)
    )
    return (await session.execute(statement)).scalars().first()


async def open_tasks_of(session: AsyncSession, staff_id: int, limit: int = 20) -> Sequence[StaffTask]:
    statement = (
        select(StaffTask)
        .where(StaffTask.staff_id == staff_id, StaffTask.status == "open")
        .order_by(StaffTask.due_date, StaffTask.id)  # type: ignore[arg-type]
        .limit(limit)
    )
    return (await session.execute(statement)).scalars().all()


def done_in_time(first: date, last: date, zone: ZoneInfo) -> ColumnElement[bool]:
    """A WHERE clause: a task due first..last was done before its due day ended in `zone`
    (as handlers.task_rates counts). The window is a few weeks, so each day's local end
    is spelt out as a UTC instant rather than converted per row in SQL (which SQLite and
    PostgreSQL would spell differently)."""
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return and_(StaffTask.status == "done", or_(false(), *(
        and_(StaffTask.due_date == day, StaffTask.done_at < day_bounds(day, zone)[1])  # type: ignore[operator]
        for day in days
    )))


async def in_store(session: AsyncSession, task: StaffTask, store_id: int | None) -> bool:
    """Whether the task's assignee works at the store (whose manager may act on it); an
    unassigned task counts as the store's when its member is."""
    if store_id is None:
        return False
    if task.staff_id is None:
        member = await session.get(Member, task.member_id) if task.member_id is not None else None
        return member is not None and member.store_id == store_id
    assignee = await session.get(Staff, task.staff_id)
    return assignee is not None and assignee.store_id == store_id


async def close_task(
    session: AsyncSession, task: StaffTask, status: Literal["done", "skipped"], note: str | None, now: datetime,
    scheme: str = "value",
) -> None:
    """Close the task; one done for a member is a touch, recorded here in the caller's
    transaction with her layer in the outcomes `scheme` as it is now (not as it is when a
    report runs: she may have moved since)."""
    task.status, task.note, task.done_at = status, note, now
    session.add(task)
    if status == "done" and task.member_id is not None:
        await session.flush()
        await record_task_touch(session, task, scheme)


@dataclass(frozen=True, slots=True)
class TaskRow:
    task: StaffTask
    staff_userid: str | None
    staff_name: str | None
    store: str | None
    member_name: str | None


async def list_tasks(
    session: AsyncSession, *, staff_userid: str | None = None, statuses: Sequence[str] = (),
    due_by: date | None = None, limit: int | None = None, staff_id: int | None = None, store_id: int | None = None,
) -> list[TaskRow]:
    """Tasks with who they are for and whom they are about, by due date."""
    statement = (
        select(StaffTask, Staff.userid, Staff.name, Store.name, Member.name)
        .outerjoin(Staff, Staff.id == StaffTask.staff_id)  # type: ignore[arg-type]
        .outerjoin(Store, Store.id == Staff.store_id)  # type: ignore[arg-type]
        .outerjoin(Member, Member.id == StaffTask.member_id)  # type: ignore[arg-type]
        .order_by(StaffTask.due_date, StaffTask.id)  # type: ignore[arg-type]
    )
    if staff_userid is not None:
        statement = statement.where(Staff.userid == staff_userid)
    # A store's tasks: its staff's, and the unassigned ones about its members.
    stores = or_(Staff.store_id == store_id, and_(StaffTask.staff_id.is_(None), Member.store_id == store_id))  # type: ignore[union-attr]
    if staff_id is not None and store_id is not None:  # a manager: her own and the store's
        statement = statement.where(or_(StaffTask.staff_id == staff_id, stores))
    elif staff_id is not None:
        statement = statement.where(StaffTask.staff_id == staff_id)
    elif store_id is not None:
        statement = statement.where(stores)
    if statuses:
        statement = statement.where(StaffTask.status.in_(statuses))  # type: ignore[attr-defined]
    if due_by is not None:
        statement = statement.where(StaffTask.due_date <= due_by)
    if limit is not None:
        statement = statement.limit(limit)
    return [TaskRow(*row) for row in (await session.execute(statement)).all()]
