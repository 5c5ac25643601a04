"""Opt-out (退订): one word stops all marketing to the member at once, confirmed once.

Service replies still reach her; the delivery loop checks the opt-out at send time, so
marketing queued before she wrote is held back too.
"""

from __future__ import annotations

from collections.abc import Sequence

from handlers.actions import Action, Reply
from handlers.context import HandlerContext
from handlers.keywords import normalise
from handlers.tag_engine import sync_actions, tag_event, untag_event
from handlers.updates import MessageUpdate, Update


async def handle(update: Update, ctx: HandlerContext) -> Sequence[Action]:
    if not isinstance(update, MessageUpdate):
        return ()
    said = normalise(update.text.strip())
    words = ctx.config.opt_out
    member = ctx.member
    if said in {normalise(w) for w in words.stop}:
        ctx.answered = True
        if member.opted_out_at is not None:
            return ()  # confirmed once already: say nothing more
        member.opted_out_at = ctx.now
        ctx.session.add(member)
        assert member.id is not None
        change = await tag_event(ctx.session, ctx.config, member.id, "opted_out", ctx.now)
        return (Reply(_confirmation(ctx, opted_out=True), why="opt_out"), *sync_actions(ctx.config, update.platform, update.sender, change))
    if said in {normalise(w) for w in words.resume} and member.opted_out_at is not None:
        ctx.answered = True
        member.opted_out_at = None
        ctx.session.add(member)
        assert member.id is not None
        change = await untag_event(ctx.session, ctx.config, member.id, "opted_out", ctx.now)
        return (Reply(_confirmation(ctx, opted_out=False), why="opt_in"),
                *sync_actions(ctx.config, update.platform, update.sender, change))
    return ()


def _confirmation(ctx: HandlerContext, opted_out: bool) -> str:
    return ctx.renderer.render(
        ctx.config.opt_out_template,
        {
            "persona": ctx.config.persona.template_variables(),
            "member": {"name": ctx.member.name},
            "opted_out": opted_out,
            "resume_word": ctx.config.opt_out.resume[0] if ctx.config.opt_out.resume else "",
        },
    )
