"""Tasks: the list (a staff member's own, a manager's store, everything for operators)
and one task's page, where it is marked done or skipped with a reason."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web

from bot.console.keys import VIEWER
from bot.console.render import render
from bot.shared.access import Viewer
from bot.shared.keys import SESSIONS
from bot.shared.live_config import live
from bot.shared.params import path_id
from handlers.member_card import member_card
from storage.models import Member, Staff, StaffTask, utcnow
from storage.tasks import close_task, list_tasks

STATUSES = ("open", "overdue", "done", "skipped", "all")
KIND_LABELS = {
    "care": "关怀礼物", "six_moments": "六次触达", "at_risk": "流失风险", "handoff_reply": "转人工回复",
    "churn_follow_up": "流失回访", "top_layer_welcome": "新晋顶层欢迎", "moments_post": "朋友圈/群发布",
    "mass_send_confirm": "群发确认", "welcome_by_hand": "手动欢迎",
    "ltv_at_risk": "可能流失",
}
LIMIT = 500


def add_routes(console: web.Application) -> None:
    console.router.add_get("/tasks", task_list)
    console.router.add_get("/tasks/{id:\\d+}", task_page)
    console.router.add_post("/tasks/{id:\\d+}/done", mark_done)
    console.router.add_post("/tasks/{id:\\d+}/skip", mark_skipped)


async def task_list(request: web.Request) -> web.Response:
    viewer: Viewer = request[VIEWER]
    status = request.query.get("status", "open")
    status = status if status in STATUSES and not viewer.by_link else "open"  # a list link: open tasks only
    # Operators may narrow the list to one staff member (the staff page links here).
    only = request.query.get("staff", "").strip() or None if viewer.is_operator else None
    mine = not viewer.is_operator and (viewer.store_id is None or request.query.get("mine") == "1")
    today = datetime.now(live(request).settings.zone).date()
    statuses = {"open": ["open"], "overdue": ["open"], "done": ["done"], "skipped": ["skipped"], "all": []}[status]
    async with request.config_dict[SESSIONS]() as session:
        rows = await list_tasks(
            session, statuses=statuses, limit=LIMIT, staff_userid=only,
            staff_id=None if viewer.is_operator else (viewer.staff_id or -1),
            store_id=None if viewer.is_operator or mine else viewer.store_id,
        )
    if status == "overdue":
        rows = [r for r in rows if r.task.due_date < today]
    return render(request, "tasks.html", rows=rows, status=status, statuses=STATUSES, today=today, only=only,
                  kinds=KIND_LABELS, limit=LIMIT, mine=mine)


async def _task_for(request: web.Request, session) -> StaffTask:  # type: ignore[no-untyped-def]
    viewer: Viewer = request[VIEWER]
    task = await session.get(StaffTask, path_id(request.match_info["id"]))
    if task is None:
        raise web.HTTPNotFound(text="no such task / 没有这个任务")
    if not await viewer.may_act_on_task(session, task):
        raise web.HTTPForbidden(text="this task is another staff member's / 这是其他同事的任务")
    return task


# Why a hand-off task was made, as the task keeps it (`handlers.hand_off`), for people.
HANDOFF_REASONS = {"hand-off word": "会员说了转人工的关键词", "angry tone": "会员语气不满",
                   "unanswered question": "自动回复答不了的问题"}


async def task_page(request: web.Request, problem: str | None = None, status: int = 200,
                    closed: str | None = None) -> web.Response:
    settings = live(request).settings
    today = datetime.now(settings.zone).date()
    async with request.config_dict[SESSIONS]() as session:
        task = await _task_for(request, session)
        member = await session.get(Member, task.member_id) if task.member_id else None
        card = await member_card(session, member, today, settings.zone, live(request).handlers.layer_labels) if member else None
        assignee = await session.get(Staff, task.staff_id) if task.staff_id else None
    return render(request, "task.html", http_status=status, task=task, card=card, assignee=assignee, today=today,
                  kinds=KIND_LABELS, problem=problem, reasons=HANDOFF_REASONS, closed=closed or request.query.get("closed"),
                  local_done=task.done_at.astimezone(settings.zone) if task.done_at else None)


async def mark_done(request: web.Request) -> web.Response:
    return await _close(request, "done")


async def mark_skipped(request: web.Request) -> web.Response:
    return await _close(request, "skipped")


async def _close(request: web.Request, status: Literal["done", "skipped"]) -> web.Response:
    form = await request.post()
    note = str(form.get("note", "")).strip()[:500]
    if status == "skipped" and not note:
        return await task_page(request, problem="跳过需要写原因", status=400)
    async with request.config_dict[SESSIONS]() as session, session.begin():
        task = await _task_for(request, session)
        already = task.status != "open"
        if not already:
            await close_task(session, task, status, note or None, utcnow(), live(request).settings.outcomes.scheme)
    if already:  # another tab or a retry got there first
        return await task_page(request, problem="这个任务已经处理过了", status=409)
    if request[VIEWER].by_link:  # the link ends with the task: answer here, not by a redirect to it
        return await task_page(request, closed=status)
    raise web.HTTPFound(f"/admin/tasks/{task.id}?closed={status}")
