"""The morning digest: each staff member's open tasks in one prompt, grouped by due day
(overdue first), and a word to the store manager about tasks overdue too long. Once per
staff member per day, once per task escalated, whatever reruns. The digest links to the
task list, an escalation to the late task (a WeCom text card, a link in the sandbox)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from content_templates.renderer import Renderer
from handlers.outbound import TASK_LIST, prompt_meta, task_page
from storage.engine import SessionFactory
from storage.outbox import NewOutboxMessage, enqueue
from storage.staff import store_managers
from storage.tasks import TaskRow, list_tasks


@dataclass(frozen=True, slots=True)
class DigestReport:
    digests: int
    escalations: int

    def __str__(self) -> str:
        return f"{self.digests} digests, {self.escalations} escalations"


async def send_digests(
    sessions: SessionFactory, renderer: Renderer, zone: ZoneInfo, now: datetime, platform: str | None,
    *, days_ahead: int = 3, escalate_after_days: int = 2,
) -> DigestReport:
    if platform is None:
        return DigestReport(0, 0)  # no channel to staff configured
    today = now.astimezone(zone).date()
    async with sessions() as session:
        rows = [r for r in await list_tasks(session, statuses=("open",), due_by=today + timedelta(days=days_ahead))
                if r.staff_userid is not None]
        managers = await store_managers(session)
    by_staff: dict[str, list[TaskRow]] = defaultdict(list)
    for row in rows:
        by_staff[row.staff_userid or ""].append(row)
    messages = [
        NewOutboxMessage(f"digest:{userid}:{today}", platform, userid, "staff_prompt",
                         renderer.render("staff/digest.txt.j2", _digest(tasks, today)),
                         meta=prompt_meta(TASK_LIST, f"今日待办：{len(tasks)} 个任务"))
        for userid, tasks in by_staff.items()
    ]
    escalations = 0
    for row in rows:
        manager = managers.get(row.store or "")
        late = (today - row.task.due_date).days
        if manager is None or late < escalate_after_days or manager.userid == row.staff_userid:
            continue
        body = renderer.render("staff/escalation.txt.j2", {
            "task": {"id": row.task.id, "title": row.task.title, "due": row.task.due_date.strftime("%m-%d")},
            "staff": row.staff_name or row.staff_userid, "days_late": late, "member": row.member_name,
        })
        messages.append(NewOutboxMessage(
            f"escalate:{row.task.id}", platform, manager.userid, "staff_prompt", body,
            meta=prompt_meta(task_page(row.task.id), f"任务逾期：{row.task.title}"),
        ))
        escalations += 1
    async with sessions() as session, session.begin():
        await enqueue(session, messages, now)
    return DigestReport(len(by_staff), escalations)


def _digest(tasks: list[TaskRow], today: date) -> dict:
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in tasks:
        due = row.task.due_date
        label = "已逾期" if due < today else "今天" if due == today else due.strftime("%m-%d")
        groups[label].append({"id": row.task.id, "title": row.task.title, "member": row.member_name})
    return {"groups": list(groups.items()), "count": len(tasks)}


