"""What the handlers need to know of the operator's configuration, as plain values.

`bot` builds these from the TOML settings; handlers never read configuration files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class KeywordRule:
    """Tag a member whose message contains any (or all) of the keywords."""

    id: str
    tag: str
    keywords: tuple[str, ...]
    match: Literal["any", "all"] = "any"
    group: str = ""
    weight: int = 0  # added to the member's interest score in `topic` on every hit
    topic: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RegexRule:
    """Tag a member whose message matches a regular expression (searched, case-insensitive,
    in the normalised text)."""

    id: str
    tag: str
    pattern: str
    group: str = ""
    weight: int = 0
    topic: str = ""


# Things a member does that rules can tag: added a staff member through a channel (活码
# state), joined or left a customer group (by name; empty: any group), deleted the staff
# member, placed an order, opted out.
EventKind = Literal["added_via_channel", "joined_group", "left_group", "deleted_staff", "placed_order", "opted_out"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRule:
    id: str
    tag: str
    event: EventKind
    subject: str = ""  # the channel state or group name the event must name; "" for any
    group: str = ""
    weight: int = 0
    topic: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BehaviourRule:
    """Tag by behaviour over a window: at least `count` messages in `days` days
    ("messages"), or no interaction at all for `days` days ("silent")."""

    id: str
    tag: str
    measure: Literal["messages", "silent"]
    days: int
    count: int = 1
    group: str = ""
    weight: int = 0
    topic: str = ""


TagRule = KeywordRule | RegexRule | EventRule | BehaviourRule


@dataclass(frozen=True, slots=True)
class TagGroup:
    """A tag group's own rules: whether its tags exclude each other (a new grade replaces
    the old), and after how many days without a new hit its tags lapse."""

    name: str
    exclusive: bool = False
    expire_days: int | None = None


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
class HandlerConfig:
    persona: Persona
    keyword_rules: tuple[KeywordRule, ...] = ()
    channels: Mapping[str, Channel] = field(default_factory=dict)
    welcome_template: str = "persona/welcome.txt.j2"
    churn_prompt_template: str = "staff/churn.txt.j2"
    zone: ZoneInfo | None = None  # local time for what people read; UTC when unset
    opt_out: OptOutWords = field(default_factory=OptOutWords)
    opt_out_template: str = "persona/opt_out.txt.j2"
