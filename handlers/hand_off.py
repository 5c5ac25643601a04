"""Hand-off: what the persona should not answer goes to a person.

A complaint, a refund, 人工, an angry tone — or a question that neither an FAQ entry nor
a tag rule understands — becomes a task
for the member's owner with the last messages of the conversation, and the member is told
once that a person will answer. Until the task is closed the persona keeps quiet, so it
does not talk over the person; what she writes meanwhile is added to the task. A question
an FAQ entry answers (「几点开门？」) is still answered: facts do not talk over anyone.

A member without an owner goes to her store's manager, else to `handoff.default_staff`;
with neither, the task stays unassigned and the console shows it to operators.
"""

from __future__ import annotations

from collections.abc import Sequence

from handlers.actions import Action, PromptStaff, Reply
from handlers.config import HandlerConfig
from handlers.context import HandlerContext
from handlers.keywords import normalise
from handlers.outbound import task_page
from handlers.speech import conversation_variables
from handlers.updates import MessageUpdate, Update
from storage.interactions import recent_messages
from storage.staff import responsible_staff
from storage.tasks import NewTask, create_task, open_task_for

KIND = "handoff_reply"


def handoff_reason(text: str, config: HandlerConfig, understood_by_tags: bool) -> str | None:
    """Why this message needs a person, or None when the persona may answer it.
    `understood_by_tags`: a tag rule matched it (tagging ran first and says so)."""
    if hits := config.handoff_matcher.matching(text):
        return hits[0].id  # "hand-off word" or "angry tone"
    policy = config.handoff
    # A question the persona has something for (an FAQ, a tag's tip) is answered by it.
    understood = understood_by_tags or config.faq_matcher.matching(text)
    if policy.unanswered == "question" and not understood:
        folded = normalise(text)
        if any(normalise(marker) in folded for marker in policy.question_markers):
            return "unanswered question"
    return None


async def handle(update: Update, ctx: HandlerContext) -> Sequence[Action]:
    if not isinstance(update, MessageUpdate) or update.sender in ctx.config.replies.ignore_senders:
        return ()
    member_id = ctx.member.id
    assert member_id is not None
    if (task := await open_task_for(ctx.session, member_id, KIND)) is not None:
        task.body = await _task_text(ctx, task.id, task.note or "")
        ctx.session.add(task)
        if not ctx.config.faq_matcher.matching(update.text):
            ctx.answered = True  # a person is on it
        return ()
    reason = handoff_reason(update.text, ctx.config, ctx.understood)
    if reason is None:
        return ()
    ctx.answered = True
    owner = await responsible_staff(ctx.session, ctx.member.owner_staff_id, ctx.member.store_id,
                                    ctx.config.handoff.default_staff)
    local = ctx.config.local(ctx.now)
    task = await create_task(
        ctx.session,
        NewTask(
            dedupe_key=f"handoff:{member_id}:{ctx.inbox_id}",
            kind=KIND,
            title=f"人工回复：{ctx.member.name or update.sender}",
            due_date=local.date(),
            staff_id=owner.id if owner else None,
            member_id=member_id,
        ),
        ctx.now,
    )
    task.note = reason
    task.body = await _task_text(ctx, task.id, reason)
    ctx.session.add(task)
    actions: list[Action] = [Reply(_notice(ctx, await conversation_variables(ctx, update.text)), why=f"handoff:{reason}")]
    platform = ctx.config.staff_platform_for(update.platform)
    if owner is not None and platform is not None:
        actions.append(PromptStaff(platform, owner.userid, task.body, link=task_page(task.id), title=task.title))
    return actions


def _notice(ctx: HandlerContext, variables: dict) -> str:
    hours = ctx.config.replies.office_hours
    local = ctx.config.local(ctx.now)
    opening = hours.next_opening(local) if hours else local
    variables["opens_at"] = None if opening is None or opening == local else opening.strftime("%m-%d %H:%M")
    return ctx.renderer.render(ctx.config.handoff.notice_template, variables)


async def _task_text(ctx: HandlerContext, task_id: int | None, reason: str) -> str:
    assert ctx.member.id is not None
    messages = await recent_messages(ctx.session, ctx.member.id, ctx.config.handoff.last_messages)
    return ctx.renderer.render(
        ctx.config.handoff.task_template,
        {
            "task_id": task_id,
            "reason": reason,
            "member": {"name": ctx.member.name},
            "messages": [
                {
                    "from_member": m.kind == "message_in",
                    "text": m.text or "",
                    "at": ctx.config.local(m.at).strftime("%m-%d %H:%M"),
                }
                for m in messages
            ],
        },
    )

