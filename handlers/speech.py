"""What the persona's templates may say about the conversation at hand."""

from __future__ import annotations

from typing import Any

from handlers.context import HandlerContext
from storage.members import store_and_owner


async def conversation_variables(ctx: HandlerContext, message: str) -> dict[str, Any]:
    """persona, member, store, owner, new_tags and message: what every reply template sees."""
    store, owner = await store_and_owner(ctx.session, ctx.member)
    return {
        "persona": ctx.config.persona.template_variables(),
        "member": {"name": ctx.member.name},
        "store": {"name": store.name} if store else None,
        "owner": {"name": owner.name} if owner else None,
        "new_tags": list(ctx.new_tags),
        "message": message,
    }
