"""`siyu tasks list`: staff tasks, and how well each staff member and store gets them done.
`siyu tasks reassign`: a staff member's open tasks and members to a colleague, where the
platform does not say that she left (the sandbox)."""

from __future__ import annotations

import sys
from collections import defaultdict
from datetime import date
from typing import Any

from bot.cli.output import print_json, print_table
from bot.cli.sessions import open_sessions
from bot.settings.handlers import handler_config
from bot.settings.model import Settings
from bot.settings.templates import renderer_for
from handlers.staff_changes import hand_over_and_tell
from handlers.task_rates import Rates, TaskFact, rates
from storage.models import utcnow
from storage.reassign import successor_of
from storage.staff import staff_by_userid
from storage.tasks import TaskRow, list_tasks

STATUSES = ("open", "overdue", "done", "skipped")
SHOWN = 200


async def tasks_list(settings: Settings, staff: str | None, status: str | None, as_json: bool) -> int:
    today = utcnow().astimezone(settings.zone).date()
    async with open_sessions(settings) as sessions, sessions() as session:
        every = await list_tasks(session, staff_userid=staff)
    chosen = [row for row in every if _has_status(row, status, today)]
    listed = [_record(row, settings, today) for row in chosen]
    summary = {"staff": _rates_by(every, today, settings, lambda r: r.staff_userid or "(unassigned)"),
               "stores": _rates_by(every, today, settings, lambda r: r.store or "(no store)")}
    if as_json:
        print_json({"today": today, "tasks": listed, **summary})
        return 0
    print_table(
        f"tasks{f' of {staff}' if staff else ''}{f' ({status})' if status else ''}: {len(listed)}",
        ("id", "due", "status", "kind", "title", "staff", "member"),
        [(t["id"], t["due_date"], t["status"], t["kind"], t["title"], t["staff"], t["member"]) for t in listed[:SHOWN]],
    )
    if len(listed) > SHOWN:
        print(f"… and {len(listed) - SHOWN} more (--json lists them all)")
    for name, rows in summary.items():
        print_table(f"per {'staff member' if name == 'staff' else 'store'} (tasks due by {today})", ("who", "due", "done", "on time", "skipped", "overdue",
                                                           "completion", "on-time rate"),
                    [(who, r["due"], r["done"], r["on_time"], r["skipped"], r["overdue"], _percent(r["completion"]),
                      _percent(r["on_time_rate"])) for who, r in rows.items()])
    return 0


def _has_status(row: TaskRow, status: str | None, today: date) -> bool:
    if status == "overdue":
        return row.task.status == "open" and row.task.due_date < today
    return status is None or row.task.status == status


def _fact(row: TaskRow, settings: Settings) -> TaskFact:
    done_on = row.task.done_at.astimezone(settings.zone).date() if row.task.done_at else None
    return TaskFact(row.task.due_date, row.task.status, done_on)


def _record(row: TaskRow, settings: Settings, today: date) -> dict[str, Any]:
    task = row.task
    overdue = task.status == "open" and task.due_date < today
    return {"id": task.id, "kind": task.kind, "title": task.title, "due_date": task.due_date,
            "status": "overdue" if overdue else task.status, "staff": row.staff_userid, "store": row.store,
            "member": row.member_name, "member_id": task.member_id, "done_at": task.done_at, "note": task.note}


def _rates_by(rows: list[TaskRow], today: date, settings: Settings, key: Any) -> dict[str, dict[str, Any]]:
    grouped: dict[str, list[TaskFact]] = defaultdict(list)
    for row in rows:
        grouped[key(row)].append(_fact(row, settings))
    return {who: _as_dict(rates(facts, today)) for who, facts in sorted(grouped.items())}


def _as_dict(r: Rates) -> dict[str, Any]:
    return {"due": r.due, "done": r.done, "on_time": r.on_time, "skipped": r.skipped, "overdue": r.overdue,
            "completion": r.completion, "on_time_rate": r.on_time_rate}


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


async def tasks_reassign(settings: Settings, leaving_userid: str, to_userid: str | None, as_json: bool) -> int:
    """Hand `leaving_userid`'s open tasks and members to `to_userid` (default: her store's
    manager), mark her inactive, prompt the receiver, and print what moved."""
    now = utcnow()
    platform = handler_config(settings).staff_platform_for("wecom")
    async with open_sessions(settings) as sessions, sessions() as session, session.begin():
        leaving = await staff_by_userid(session, leaving_userid)
        if leaving is None:
            return _refuse(f"no staff member {leaving_userid!r}")
        to = await staff_by_userid(session, to_userid) if to_userid else await successor_of(session, leaving)
        if to is None:
            return _refuse(f"no active staff member {to_userid!r}" if to_userid else
                           f"{leaving_userid}'s store has no other active manager: name who takes over with --to USERID")
        if not to.active or to.id == leaving.id:
            return _refuse(f"{to.userid} cannot take over: {'inactive' if not to.active else 'the same staff member'}")
        done = await hand_over_and_tell(session, renderer_for(settings), leaving, to, platform, now, show=SHOWN)
    moved = [{"id": r.task.id, "due_date": r.task.due_date, "kind": r.task.kind, "title": r.task.title,
              "member": r.member_name} for r in done.tasks]
    if as_json:
        print_json({"from": leaving.userid, "to": to.userid, "tasks": done.moved.tasks,
                    "members": done.moved.members, "moved_tasks": moved, "prompted": done.prompt is not None
                    and platform is not None})
        return 0
    print(f"{leaving.userid} ({leaving.name}) is now inactive: {done.moved.tasks} open task(s) and "
          f"{done.moved.members} member(s) moved to {to.userid} ({to.name})")
    if moved:
        print_table("tasks moved", ("id", "due", "kind", "title", "member"),
                    [(t["id"], t["due_date"], t["kind"], t["title"], t["member"]) for t in moved])
        if done.moved.tasks > len(moved):
            print(f"… and {done.moved.tasks - len(moved)} more")
    return 0


def _refuse(problem: str) -> int:
    print(f"siyu: {problem}; nothing moved", file=sys.stderr)
    return 1
