"""Giving tags by rule: tag groups that exclude each other, interest weights, and the
platform tags that follow ours. Shared by every handler that tags (words, events)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.actions import MarkTags, TagName
from handlers.config import HandlerConfig
from handlers.rules import EventKind, EventRule, TagRule
from storage.models import Tag
from storage.platform_tags import tag_named
from storage.tags import add_interest, apply_tag, ensure_tag, remove_member_tags, tags_in_group


@dataclass(slots=True)
class TagChange:
    added: list[TagName] = field(default_factory=list)
    removed: list[TagName] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)

    def merge(self, other: TagChange) -> None:
        self.added.extend(other.added)
        self.removed.extend(other.removed)


def winners(rules: Sequence[TagRule], config: HandlerConfig) -> list[TagRule]:
    """The rules to apply from those that fired together: in an exclusive group only the
    first (rule order decides, so list the strongest grade first); elsewhere all."""
    claimed: set[str] = set()
    chosen: list[TagRule] = []
    for rule in rules:
        group = config.tag_groups.get(rule.group)
        if group is not None and group.exclusive:
            if rule.group in claimed:
                continue
            claimed.add(rule.group)
        chosen.append(rule)
    return chosen


async def clear_exclusive_group(
    session: AsyncSession, config: HandlerConfig, member_id: int, tag: Tag, now: datetime
) -> list[tuple[str, str]]:
    """Before `tag` is given: in an exclusive group a new grade replaces the old one,
    whoever set it. Returns the (group, name) of the tags taken."""
    group = config.tag_groups.get(tag.group)
    if group is None or not group.exclusive:
        return []
    others = [t for t in await tags_in_group(session, member_id, tag.group) if t.id != tag.id]
    await remove_member_tags(session, member_id, [t.id for t in others if t.id is not None], now)
    return [(t.group, t.name) for t in others]


async def give_tags(
    session: AsyncSession, config: HandlerConfig, member_id: int, rules: Sequence[TagRule], now: datetime
) -> TagChange:
    """Apply what `rules` say, recording each rule as its tag's source."""
    change = TagChange()
    for rule in winners(rules, config):
        tag = await ensure_tag(session, rule.tag, rule.group)
        change.removed.extend(await clear_exclusive_group(session, config, member_id, tag, now))
        if await apply_tag(session, member_id, tag, "rule", rule.id, now):
            change.added.append((rule.group, rule.tag))
        if rule.weight:
            await add_interest(session, member_id, rule.topic or rule.group or rule.tag, rule.weight, now)
    return change


def event_rules(config: HandlerConfig, event: EventKind, subject: str = "") -> list[EventRule]:
    """Event rules for `event`; a rule naming a subject (channel, group) wants that one."""
    return [r for r in config.rules_of(EventRule) if r.event == event and r.subject in ("", subject)]


async def tag_event(
    session: AsyncSession,
    config: HandlerConfig,
    member_id: int,
    event: EventKind,
    now: datetime,
    subject: str = "",
) -> TagChange:
    return await give_tags(session, config, member_id, event_rules(config, event, subject), now)


async def untag_event(
    session: AsyncSession, config: HandlerConfig, member_id: int, event: EventKind, now: datetime
) -> TagChange:
    """Undo what `event`'s rules gave: re-subscribing takes the 已退订 tag off again, so
    an audience's `exclude_tags = ["已退订"]` reaches her once more."""
    change = TagChange()
    for rule in event_rules(config, event):
        tag = await tag_named(session, rule.group, rule.tag)
        if tag is not None and tag.id is not None and await remove_member_tags(session, member_id, [tag.id], now):
            change.removed.append((rule.group, rule.tag))
    return change


def sync_actions(config: HandlerConfig, platform: str, external_id: str, change: TagChange) -> tuple[MarkTags, ...]:
    """Mark the change on the platform too, where its tags follow ours."""
    if platform not in config.sync_tags_on or not change:
        return ()
    return (MarkTags(platform, external_id, tuple(change.added), tuple(change.removed)),)
