"""A member placed an order (from a shop system feeding events, or the sandbox): the
order is kept for RFM, and event rules on orders tag her."""

from __future__ import annotations

from collections.abc import Sequence

from handlers.actions import Action
from handlers.context import HandlerContext
from handlers.tag_engine import sync_actions, tag_event
from handlers.updates import EventUpdate, Update
from storage.orders import record_order
from storage.staff import store_by_code

ORDER_PLACED = "order_placed"


async def handle(update: Update, ctx: HandlerContext) -> Sequence[Action]:
    if not isinstance(update, EventUpdate) or update.event != ORDER_PLACED:
        return ()
    member_id = ctx.member.id
    assert member_id is not None
    store_code = update.detail.get("store", "")
    store = await store_by_code(ctx.session, store_code) if store_code else None
    new = await record_order(
        ctx.session, update.detail["order_no"], member_id, int(update.detail["amount_cents"]),
        update.occurred_at, store.id if store else None,
    )
    if not new:
        return ()  # the same order again: already counted and tagged
    change = await tag_event(ctx.session, ctx.config, member_id, "placed_order", ctx.now, store_code)
    ctx.new_tags.extend(name for _, name in change.added)
    return sync_actions(ctx.config, update.platform, update.sender, change)
