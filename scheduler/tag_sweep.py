"""The daily tag sweep: rule tags lapse after their group's days without a hit, and
members silent for a behaviour rule's days get its tag (沉睡). Two statements per rule
or group, whatever the number of members."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from handlers.config import HandlerConfig
from handlers.rules import BehaviourRule
from storage.engine import SessionFactory
from storage.tags import ensure_tag, expire_rule_tags, tag_silent_members


@dataclass(frozen=True, slots=True)
class SweepReport:
    lapsed: int
    silent_tagged: int

    def __str__(self) -> str:
        return f"{self.lapsed} tags lapsed, {self.silent_tagged} members tagged as silent"


async def sweep_tags(sessions: SessionFactory, config: HandlerConfig, now: datetime) -> SweepReport:
    lapsed = silent = 0
    async with sessions() as session, session.begin():
        for group in config.tag_groups.values():
            if group.expire_days:
                lapsed += await expire_rule_tags(session, group.name, now - timedelta(days=group.expire_days), now)
        for rule in config.rules_of(BehaviourRule):
            if rule.measure == "silent":
                tag = await ensure_tag(session, rule.tag, rule.group)
                silent += await tag_silent_members(session, tag, rule.id, now - timedelta(days=rule.days), now)
    return SweepReport(lapsed, silent)
