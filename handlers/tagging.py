"""Tag members by what they say, with the rule that fired kept as the tag's source."""

from __future__ import annotations

from collections.abc import Sequence

from handlers.actions import Action
from handlers.context import HandlerContext
from handlers.keywords import matching_rules
from handlers.updates import MessageUpdate, Update
from storage.tags import apply_tag, ensure_tag


async def handle(update: Update, ctx: HandlerContext) -> Sequence[Action]:
    if not isinstance(update, MessageUpdate):
        return ()
    assert ctx.member.id is not None
    for rule in matching_rules(ctx.config.keyword_rules, update.text):
        tag = await ensure_tag(ctx.session, rule.tag, rule.group)
        if await apply_tag(ctx.session, ctx.member.id, tag, "rule", rule.id, ctx.now):
            ctx.new_tags.append(rule.tag)
    return ()
