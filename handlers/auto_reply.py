"""The persona answers: an FAQ entry when one fits, else its own reply (or, outside office
hours, a word on when a person is back) — within a budget, so it never floods a chat,
and never to itself or another bot."""

from __future__ import annotations

from collections.abc import Sequence

from handlers.actions import Action, Reply
from handlers.context import HandlerContext
from handlers.keywords import normalise
from handlers.speech import conversation_variables
from handlers.updates import MessageUpdate, Update
from storage.outbox import replies_since


async def handle(update: Update, ctx: HandlerContext) -> Sequence[Action]:
    if not isinstance(update, MessageUpdate):
        return ()
    policy = ctx.config.replies
    if update.sender in policy.ignore_senders:
        return ()
    assert ctx.member.id is not None
    recent = await replies_since(ctx.session, ctx.member.id, ctx.now - policy.per)
    if normalise(update.text.strip()) in {normalise(r.strip()) for r in recent}:
        return ()  # our own words coming back: a bot (or we) would answer forever
    if len(recent) > policy.max_replies:
        return ()  # budget spent and said so: quiet until the window moves on
    variables = await conversation_variables(ctx, update.text)
    if len(recent) == policy.max_replies:  # one short notice, not silence
        return (Reply(ctx.renderer.render(policy.budget_template, variables), why="budget"),)
    template = reply_template(update.text, ctx, variables)
    return (Reply(ctx.renderer.render(template, variables), why=reply_reason(update.text, ctx, template)),)


def reply_template(text: str, ctx: HandlerContext, variables: dict) -> str:
    """The template to answer with; adds what an out-of-hours reply needs to `variables`."""
    if faq := ctx.config.faq_matcher.matching(text):
        return faq[0].tag  # the FAQ entry's template
    hours = ctx.config.replies.office_hours
    local = ctx.config.local(ctx.now)
    if hours is not None and not hours.open_at(local):
        opening = hours.next_opening(local)
        variables["opens_at"] = opening.strftime("%m-%d %H:%M") if opening else None
        return hours.template
    return ctx.config.persona.reply_template


def reply_reason(text: str, ctx: HandlerContext, template: str) -> str:
    """Why the persona answered this way, kept on the outbox row for the console."""
    if faq := ctx.config.faq_matcher.matching(text):
        return f"faq:{faq[0].id}"
    return "persona" if template == ctx.config.persona.reply_template else "out_of_hours"
