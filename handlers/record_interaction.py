"""First in the chain: every update counts as engagement."""

from __future__ import annotations

from collections.abc import Sequence

from handlers.actions import Action
from handlers.context import HandlerContext
from handlers.updates import MessageUpdate, Update
from storage.interactions import record_interaction


async def handle(update: Update, ctx: HandlerContext) -> Sequence[Action]:
    assert ctx.member.id is not None
    if isinstance(update, MessageUpdate):
        kind, at, text = "message_in", update.sent_at, update.text
    else:
        kind, at, text = "event", update.occurred_at, update.event
    await record_interaction(
        ctx.session, ctx.member.id, kind, update.platform, at, text, ref=f"inbox:{ctx.inbox_id}"
    )
    return ()
