"""What the handlers need to know of the operator's configuration, as plain values.

`bot` builds these from the TOML settings; handlers never read configuration files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from handlers.matching import MessageMatcher
from handlers.rules import BehaviourRule, EventRule, KeywordRule, RegexRule, TagGroup, TagRule

Rule = TypeVar("Rule", KeywordRule, RegexRule, EventRule, BehaviourRule)


@dataclass(frozen=True, slots=True)
class Persona:
    """The brand speaking as a person (人设)."""

    name: str
    title: str = ""
    signature: str = ""
    default_line: str = ""
    tips: Mapping[str, str] = field(default_factory=dict)
    reply_template: str = "persona/reply.txt.j2"

    def template_variables(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "signature": self.signature or self.name,
            "default_line": self.default_line,
            "tips": dict(self.tips),
        }


@dataclass(frozen=True, slots=True)
class Channel:
    """A contact-way code (活码): where a new contact came from and what that implies."""

    state: str
    tags: tuple[str, ...] = ()
    store: str | None = None  # store code
    owner: str | None = None  # staff userid who owns members from this channel


@dataclass(frozen=True, slots=True)
class OptOutWords:
    """What a member writes, alone, to stop marketing (退订) or to have it back (订阅)."""

    stop: tuple[str, ...] = ("退订", "TD", "unsubscribe")
    resume: tuple[str, ...] = ("订阅", "subscribe")


@dataclass(frozen=True, slots=True)
class OfficeHours:
    """When a person is there to answer; outside them the persona says when they will be."""

    days: frozenset[int]  # 0 = Monday
    start: time
    end: time  # may be before start: hours that run past midnight
    template: str = "persona/out_of_hours.txt.j2"

    def open_at(self, local: datetime) -> bool:
        now = local.time()
        if self.start <= self.end:
            return local.weekday() in self.days and self.start <= now < self.end
        # Past midnight the opening belongs to the day before.
        if now >= self.start:
            return local.weekday() in self.days
        return now < self.end and (local.weekday() - 1) % 7 in self.days

    def next_opening(self, local: datetime) -> datetime | None:
        """When a person is next there, from `local` on (`local` itself when open now)."""
        if self.open_at(local):
            return local
        for ahead in range(8):
            day = (local + timedelta(days=ahead)).date()
            opening = datetime.combine(day, self.start, local.tzinfo)
            if opening > local and day.weekday() in self.days:
                return opening
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class FaqEntry:
    """A question the persona answers from a template, found by keywords or a pattern."""

    id: str
    template: str
    keywords: tuple[str, ...] = ()
    match: Literal["any", "all"] = "any"
    pattern: str | None = None


@dataclass(frozen=True, slots=True)
class ReplyPolicy:
    max_replies: int = 3  # bot replies to one member…
    per: timedelta = timedelta(minutes=10)  # …within this long
    ignore_senders: frozenset[str] = frozenset()  # other bots: never answered
    office_hours: OfficeHours | None = None
    faq: tuple[FaqEntry, ...] = ()
    # Said once when the budget is spent, so she knows she was heard.
    budget_template: str = "persona/busy.txt.j2"


@dataclass(frozen=True, slots=True)
class HandOffPolicy:
    """When the persona steps back and a person answers."""

    keywords: tuple[str, ...] = ("人工", "转人工", "投诉", "退款", "退货", "差评")
    angry_words: tuple[str, ...] = ("气死", "太差了", "垃圾", "骗子", "恶心", "再也不")
    # "question": a question nothing understands (no FAQ entry, no tag rule) goes to a
    # person too; "never": only the words above do.
    unanswered: Literal["question", "never"] = "question"
    question_markers: tuple[str, ...] = ("?", "？", "吗", "怎么", "为什么", "多少", "几点", "哪里", "能不能", "可以吗")
    last_messages: int = 10
    notice_template: str = "persona/handoff.txt.j2"
    task_template: str = "staff/handoff.txt.j2"
    # Who takes a hand-off from a member with no owner and no store manager (a userid).
    default_staff: str | None = None


@dataclass(frozen=True, slots=True)
class HandlerConfig:
    persona: Persona
    tag_rules: tuple[TagRule, ...] = ()
    tag_groups: Mapping[str, TagGroup] = field(default_factory=dict)
    # Platforms whose own tags follow ours (WeCom corp tags when tag sync is on).
    sync_tags_on: frozenset[str] = frozenset()
    channels: Mapping[str, Channel] = field(default_factory=dict)
    welcome_template: str = "persona/welcome.txt.j2"
    churn_prompt_template: str = "staff/churn.txt.j2"
    zone: ZoneInfo | None = None  # local time for what people read; UTC when unset
    opt_out: OptOutWords = field(default_factory=OptOutWords)
    opt_out_template: str = "persona/opt_out.txt.j2"
    # Where staff receive prompts (WeCom app messages, the sandbox staff panel).
    staff_platforms: frozenset[str] = frozenset()
    replies: ReplyPolicy = field(default_factory=ReplyPolicy)
    handoff: HandOffPolicy = field(default_factory=HandOffPolicy)
    # Scheme id → (its label, layer id → label): what staff read instead of ids.
    layer_labels: Mapping[str, tuple[str, Mapping[str, str]]] = field(default_factory=dict)
    # The layer scheme a touch records (outcomes.scheme): a task closed by command is one.
    outcome_scheme: str = "value"
    # Built once from the rules above, not per message.
    message_matcher: MessageMatcher = field(init=False, repr=False, compare=False)
    faq_matcher: MessageMatcher = field(init=False, repr=False, compare=False)
    handoff_matcher: MessageMatcher = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_text = [r for r in self.tag_rules if isinstance(r, KeywordRule | RegexRule)]
        faq: list[KeywordRule | RegexRule] = []
        for entry in self.replies.faq:
            if entry.keywords:
                faq.append(KeywordRule(id=entry.id, tag=entry.template, keywords=entry.keywords, match=entry.match))
            if entry.pattern:
                faq.append(RegexRule(id=entry.id, tag=entry.template, pattern=entry.pattern))
        words = self.handoff
        handoff = [
            KeywordRule(id=name, tag=name, keywords=keywords)
            for name, keywords in (("hand-off word", words.keywords), ("angry tone", words.angry_words))
            if keywords
        ]
        object.__setattr__(self, "message_matcher", MessageMatcher(by_text))
        object.__setattr__(self, "faq_matcher", MessageMatcher(faq))
        object.__setattr__(self, "handoff_matcher", MessageMatcher(handoff))

    def rules_of(self, kind: type[Rule]) -> tuple[Rule, ...]:
        return tuple(r for r in self.tag_rules if isinstance(r, kind))

    def staff_platform_for(self, platform: str) -> str | None:
        """Where to prompt staff about a member who wrote on `platform`: the same platform
        when staff are there too (the sandbox, WeCom), else the staff channel there is."""
        if platform in self.staff_platforms:
            return platform
        return min(self.staff_platforms, default=None)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone) if self.zone else moment
