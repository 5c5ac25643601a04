"""Platform-neutral updates: what every adapter translates its callbacks into.

An update is stored in the inbox as JSON before the platform is answered, so the
round trip through `to_payload` / `from_payload` must be exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import orjson

# Who an update is about: a member (resolved to a member row), a staff member, or the
# platform itself (a group changed, a tag changed, messages are waiting to be pulled).
Actor = Literal["member", "staff", "system"]


@dataclass(frozen=True, slots=True)
class MessageUpdate:
    """A text someone wrote to the brand account."""

    key: str  # idempotency key: the same platform delivery always yields the same key
    platform: str
    sender: str  # the sender's id on that platform
    text: str
    sent_at: datetime
    sender_name: str | None = None
    actor: Actor = "member"
    # The platform's conversation the message came through, where replies must go back
    # (e.g. "kf:<open_kfid>" for WeChat Customer Service); None where there is one way.
    conversation: str | None = None


@dataclass(frozen=True, slots=True)
class EventUpdate:
    """Something that happened (a contact added, a group joined, an unsubscribe…)."""

    key: str
    platform: str
    sender: str
    event: str
    occurred_at: datetime
    detail: dict[str, str] = field(default_factory=dict)
    actor: Actor = "member"


Update = MessageUpdate | EventUpdate

def kind_of(update: Update) -> str:
    """What an update is, in a word (a metric label): "message", or the event's name."""
    return "message" if isinstance(update, MessageUpdate) else update.event


# Events that carry a welcome code: WeCom takes the welcome only within 20 s of the event.
WELCOME_EVENTS = ("add_external_contact", "add_half_external_contact")


def is_urgent(update: Update) -> bool:
    """Must be handled within seconds, ahead of any backlog: a new contact whose welcome
    code is waiting."""
    return isinstance(update, EventUpdate) and update.event in WELCOME_EVENTS and bool(update.detail.get("WelcomeCode"))


_KINDS: dict[str, type[MessageUpdate] | type[EventUpdate]] = {
    "message": MessageUpdate,
    "event": EventUpdate,
}
_TIMES = ("sent_at", "occurred_at")


def to_payload(update: Update) -> str:
    # orjson writes a dataclass itself — its fields in order, times as isoformat() does —
    # in a third of the time of building the dict by hand; the type goes first. This
    # runs on the acknowledgement path of every callback.
    kind = b'{"type":"message",' if isinstance(update, MessageUpdate) else b'{"type":"event",'
    return (kind + orjson.dumps(update)[1:]).decode()


def from_payload(payload: str) -> Update:
    body = orjson.loads(payload)
    kind = _KINDS[body.pop("type")]
    for name in _TIMES:
        if name in body:
            body[name] = datetime.fromisoformat(body[name])
    return kind(**body)
