"""Staff tasks: prompts for a person to act, each created once per occasion."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialects import insert_ignoring_conflicts
from storage.models import StaffTask

TASKS = StaffTask.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class NewTask:
    dedupe_key: str
    kind: str
    title: str
    due_date: date
    staff_id: int | None = None
    member_id: int | None = None
    body: str = ""


async def create_task(session: AsyncSession, task: NewTask, now: datetime) -> None:
    """Create the task unless one with the same dedupe key exists."""
    statement = insert_ignoring_conflicts(TASKS, session.bind.dialect.name, ["dedupe_key"]).values(
        dedupe_key=task.dedupe_key, staff_id=task.staff_id, member_id=task.member_id, kind=task.kind,
        title=task.title, body=task.body, due_date=task.due_date, status="open", created_at=now,
    )
    await session.execute(statement)
