"""Tag members by what they say (keyword and regex rules) and how often they write
(behaviour rules), with the rule that fired kept as the tag's source."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from handlers.actions import Action
from handlers.context import HandlerContext
from handlers.rules import BehaviourRule, TagRule
from handlers.tag_engine import give_tags, sync_actions
from handlers.updates import MessageUpdate, Update
from storage.interactions import messages_since
from storage.tags import remove_rule_tags


async def handle(update: Update, ctx: HandlerContext) -> Sequence[Action]:
    if not isinstance(update, MessageUpdate):
        return ()
    member_id = ctx.member.id
    assert member_id is not None
    fired: list[TagRule] = list(ctx.config.message_matcher.matching(update.text))
    ctx.understood = bool(fired)
    for rule in ctx.config.rules_of(BehaviourRule):
        if rule.measure == "messages":
            # This message is already recorded, so it counts.
            if await messages_since(ctx.session, member_id, ctx.now - timedelta(days=rule.days)) >= rule.count:
                fired.append(rule)
    change = await give_tags(ctx.session, ctx.config, member_id, fired, ctx.now)
    # Whoever writes is no longer silent: one statement, whatever the number of rules.
    silent = [rule for rule in ctx.config.rules_of(BehaviourRule) if rule.measure == "silent"]
    if silent:
        gone = await remove_rule_tags(ctx.session, member_id, [rule.id for rule in silent])
        change.removed.extend((rule.group, rule.tag) for rule in silent if rule.id in gone)
    ctx.new_tags.extend(name for _, name in change.added)
    return sync_actions(ctx.config, update.platform, update.sender, change)
