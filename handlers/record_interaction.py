"""First in the chain: every update counts as engagement.

A "staff_replied" event (a staff member wrote to the member on the platform, outside
siyu) is recorded as the staff's message to her, kind "staff_out", not as her event.
"""

from __future__ import annotations

from collections.abc import Sequence

from handlers.actions import Action
from handlers.context import HandlerContext
from handlers.updates import MessageUpdate, Update
from storage.interactions import record_interaction

STAFF_REPLIED = "staff_replied"


async def handle(update: Update, ctx: HandlerContext) -> Sequence[Action]:
    assert ctx.member.id is not None
    if isinstance(update, MessageUpdate):
        kind, at, text = "message_in", update.sent_at, update.text
    elif update.event == STAFF_REPLIED:
        kind, at, text = "staff_out", update.occurred_at, update.detail.get("servicer", "")
    else:
        kind, at, text = "event", update.occurred_at, update.event
    await record_interaction(
        ctx.session, ctx.member.id, kind, update.platform, at, text, ref=f"inbox:{ctx.inbox_id}"
    )
    return ()
