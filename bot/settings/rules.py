"""Settings for what the bot does with a member's words: tag rules and tag groups,
automatic replies (FAQ, office hours, the reply budget) and hand-off to a person.

Part of the configuration file (see bot/settings/model.py); kept apart so each file stays small.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from handlers.config import HandOffPolicy
from handlers.matching import valid_pattern
from handlers.rules import EventKind

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EVENTS: tuple[str, ...] = get_args(EventKind)
# Which keys belong to which kind of rule: any other kind's key is a mistake to report.
KIND_KEYS = {
    "keyword": {"keywords", "match"},
    "regex": {"pattern"},
    "event": {"event", "subject"},
    "behaviour": {"measure", "days", "count"},
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_blank(words: list[str]) -> list[str]:
    if any(not w.strip() for w in words):
        raise ValueError("must not contain blank words")
    return words


class TagRuleSettings(_Section):
    id: str = Field(min_length=1)
    kind: Literal["keyword", "regex", "event", "behaviour"] = "keyword"
    tag: str = Field(min_length=1, max_length=64)
    group: str = Field(default="", max_length=64)
    weight: int = 0
    topic: str = Field(default="", max_length=64)
    enabled: bool = True  # a disabled rule is kept (the console can switch it back on) but tags nobody
    # keyword
    keywords: list[str] = []
    match: Literal["any", "all"] = "any"
    # regex
    pattern: str | None = None
    # event
    event: EventKind | None = None
    subject: str = ""
    # behaviour
    measure: Literal["messages", "silent"] | None = None
    days: int | None = Field(default=None, ge=1, le=3650)
    count: int = Field(default=1, ge=1)

    _blank_keywords = field_validator("keywords")(_no_blank)

    @model_validator(mode="after")
    def _fits_its_kind(self) -> TagRuleSettings:
        given = self.model_fields_set
        stray = sorted(k for kind, keys in KIND_KEYS.items() if kind != self.kind for k in keys & given)
        if stray:
            raise ValueError(f"a {self.kind} rule does not take {', '.join(stray)}")
        if self.kind == "keyword" and not self.keywords:
            raise ValueError("a keyword rule needs at least one keyword")
        if self.kind == "regex":
            if not self.pattern:
                raise ValueError("a regex rule needs a pattern")
            if problem := valid_pattern(self.pattern):
                raise ValueError(f"pattern is not a valid regular expression: {problem}")
        if self.kind == "event" and self.event is None:
            raise ValueError(f"an event rule needs event, one of {', '.join(EVENTS)}")
        if self.kind == "behaviour" and (self.measure is None or self.days is None):
            raise ValueError('a behaviour rule needs measure ("messages" or "silent") and days')
        return self


class TagGroupSettings(_Section):
    name: str = Field(min_length=1, max_length=64)
    exclusive: bool = False
    expire_days: int | None = Field(default=None, ge=1, le=3650)


def _unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what} {name!r} is used twice")
        seen.add(name)


class TagRulesFile(_Section):
    """A rules file named by `tags.rules_file`: the same [[rules]] and [[groups]] tables."""

    rules: list[TagRuleSettings] = []
    groups: list[TagGroupSettings] = []


class TagSettings(_Section):
    rules: list[TagRuleSettings] = []
    groups: list[TagGroupSettings] = []
    rules_file: str | None = None
    # When lapsed tags are removed and silent members tagged, each day.
    sweep_cron: str = "20 4 * * *"

    @model_validator(mode="after")
    def _unique_names(self) -> TagSettings:
        _unique([r.id for r in self.rules], "rule id")
        _unique([g.name for g in self.groups], "tag group")
        return self

    def merged(self, extra: TagRulesFile) -> TagSettings:
        """These settings with a rules file's rules and groups after them."""
        return TagSettings(
            rules=[*self.rules, *extra.rules],
            groups=[*self.groups, *extra.groups],
            rules_file=self.rules_file,
            sweep_cron=self.sweep_cron,
        )


def _clock(value: str) -> time:
    if not re.fullmatch(r"\d{1,2}:\d{2}", value):
        raise ValueError(f"{value!r} is not a time like 09:00")
    hours, minutes = map(int, value.split(":"))
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise ValueError(f"{value!r} is not a time of day")
    return time(0, 0) if hours == 24 else time(hours, minutes)


class OfficeHoursSettings(_Section):
    days: list[Literal[WEEKDAYS]] = list(WEEKDAYS)  # type: ignore[valid-type]
    start: str = "09:00"
    end: str = "21:00"
    template: str = "persona/out_of_hours.txt.j2"

    @field_validator("start", "end")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        _clock(value)
        return value

    def opening(self) -> tuple[time, time]:
        return _clock(self.start), _clock(self.end)


class FaqSettings(_Section):
    id: str = Field(min_length=1)
    keywords: list[str] = []
    match: Literal["any", "all"] = "any"
    pattern: str | None = None
    template: str = Field(min_length=1)

    _blank_keywords = field_validator("keywords")(_no_blank)

    @model_validator(mode="after")
    def _has_a_trigger(self) -> FaqSettings:
        if not self.keywords and not self.pattern:
            raise ValueError("an FAQ entry needs keywords or a pattern")
        if self.pattern and (problem := valid_pattern(self.pattern)):
            raise ValueError(f"pattern is not a valid regular expression: {problem}")
        return self


class ReplySettings(_Section):
    max_replies: int = Field(default=3, ge=1)
    per_minutes: int = Field(default=10, ge=1)
    ignore_senders: list[str] = []
    office_hours: OfficeHoursSettings | None = None
    faq: list[FaqSettings] = []
    budget_template: str = "persona/busy.txt.j2"

    @model_validator(mode="after")
    def _unique_ids(self) -> ReplySettings:
        _unique([f.id for f in self.faq], "FAQ id")
        return self


_HANDOFF = HandOffPolicy()  # the word lists and templates are the handlers' own defaults


class HandOffSettings(_Section):
    keywords: list[str] = list(_HANDOFF.keywords)
    angry_words: list[str] = list(_HANDOFF.angry_words)
    unanswered: Literal["question", "never"] = _HANDOFF.unanswered
    question_markers: list[str] = list(_HANDOFF.question_markers)
    last_messages: int = Field(default=_HANDOFF.last_messages, ge=1, le=50)
    notice_template: str = _HANDOFF.notice_template
    task_template: str = _HANDOFF.task_template
    default_staff: str | None = Field(default=None, min_length=1, max_length=64)

    _blank = field_validator("keywords", "angry_words", "question_markers")(_no_blank)
