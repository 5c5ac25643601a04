"""Tag rules as operators write them: plain values, matched elsewhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


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
