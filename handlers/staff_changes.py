"""A staff member leaves: her open tasks and her members go to the store manager, who is
told once what she received.

WeCom says so with the contacts callback (change_contact / delete_user, mapped to the
event "staff_left"); where a platform has no such event, `siyu tasks reassign` does the
same by hand. A member transferred to a colleague is handled with her contact events
(`handlers.contact_events`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from content_templates.renderer import Renderer
from handlers.actions import Action, PromptStaff
from handlers.context import PlatformContext
from handlers.outbound import TASK_LIST, prompt_meta
from handlers.updates import EventUpdate, Update
from storage.models import Staff
from storage.outbox import NewOutboxMessage, enqueue
from storage.reassign import Handover, hand_over, successor_of
from storage.staff import staff_by_userid
from storage.tasks import TaskRow, list_tasks

log = logging.getLogger(__name__)
STAFF_LEFT = "staff_left"
HANDOVER_TEMPLATE = "staff/handover.txt.j2"
IN_PROMPT = 10  # tasks named in the prompt; the rest are counted


@dataclass(frozen=True, slots=True)
class HandedOver:
    leaving: Staff
    to: Staff | None
    moved: Handover
    tasks: list[TaskRow]  # the open tasks that moved, the earliest due first (at most `show`)
    prompt: str | None  # what to tell `to`; None when nobody received anything


async def hand_over_work(
    session: AsyncSession, renderer: Renderer, leaving: Staff, to: Staff | None, show: int = IN_PROMPT
) -> HandedOver:
    """Move `leaving`'s open tasks and members to `to` (None: unassigned), make her
    inactive, and word the prompt for `to`."""
    assert leaving.id is not None
    tasks = await list_tasks(session, staff_id=leaving.id, statuses=("open",), limit=show)
    moved = await hand_over(session, leaving, to)
    prompt = None
    if to is not None and (moved.tasks or moved.members):
        prompt = renderer.render(HANDOVER_TEMPLATE, {
            "leaving": leaving.name or leaving.userid,
            "tasks": moved.tasks,
            "members": moved.members,
            "shown": [{"id": r.task.id, "due": r.task.due_date.strftime("%m-%d"), "title": r.task.title,
                       "member": r.member_name} for r in tasks[:IN_PROMPT]],
        })
    return HandedOver(leaving, to, moved, tasks, prompt)


async def hand_over_and_tell(
    session: AsyncSession, renderer: Renderer, leaving: Staff, to: Staff | None, platform: str | None,
    now: datetime, show: int = IN_PROMPT,
) -> HandedOver:
    """Hand over as `hand_over_work` does and queue the prompt to `to` on `platform` (the
    staff channel; None: nobody can be told) — for a hand-over by hand, from the command
    line or the console, outside the dispatcher."""
    done = await hand_over_work(session, renderer, leaving, to, show)
    if done.prompt is not None and to is not None and platform is not None:
        await enqueue(session, [NewOutboxMessage(
            f"handover:{leaving.userid}:{now:%Y%m%dT%H%M%S}", platform, to.userid, "staff_prompt", done.prompt,
            staff_id=to.id, meta=prompt_meta(TASK_LIST, handover_title(leaving)),
        )], now)
    return done


def handover_title(leaving: Staff) -> str:
    return f"工作交接：{leaving.name or leaving.userid}"


async def handle(update: Update, ctx: PlatformContext) -> Sequence[Action]:
    if not isinstance(update, EventUpdate) or update.event != STAFF_LEFT:
        return ()
    leaving = await staff_by_userid(ctx.session, update.sender)
    if leaving is None or not leaving.active:
        return ()  # never ours, or handed over already (WeCom re-sent the news)
    to = await successor_of(ctx.session, leaving)
    done = await hand_over_work(ctx.session, ctx.renderer, leaving, to)
    log.info("staff %s left: %d open tasks and %d members to %s", leaving.userid, done.moved.tasks,
             done.moved.members, to.userid if to is not None else "nobody (unassigned)")
    platform = ctx.config.staff_platform_for(update.platform)
    if to is None or done.prompt is None or platform is None:
        return ()
    return (PromptStaff(platform, to.userid, done.prompt, link=TASK_LIST, title=handover_title(leaving)),)
