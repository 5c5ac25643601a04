"""The persona answers, in the brand's voice, from an operator's template."""

from __future__ import annotations

from collections.abc import Sequence

from handlers.actions import Action, Reply
from handlers.context import HandlerContext
from handlers.updates import MessageUpdate, Update
from storage.members import store_and_owner


async def handle(update: Update, ctx: HandlerContext) -> Sequence[Action]:
    if not isinstance(update, MessageUpdate):
        return ()
    store, owner = await store_and_owner(ctx.session, ctx.member)
    persona = ctx.config.persona
    text = ctx.renderer.render(
        persona.reply_template,
        {
            "persona": persona.template_variables(),
            "member": {"name": ctx.member.name},
            "store": {"name": store.name} if store else None,
            "owner": {"name": owner.name} if owner else None,
            "new_tags": list(ctx.new_tags),
            "message": update.text,
        },
    )
    return (Reply(text),)
