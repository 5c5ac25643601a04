"""What handlers ask for. The dispatcher turns each into an outbox row, so every effect
on a platform is durable, deduplicated and retried by the same delivery loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Reply:
    """A message back to the sender of the update, the way it came."""

    text: str
    kind: Literal["service", "marketing"] = "service"
    # Why the bot said it, for the console's conversation view: "faq:<id>", "persona",
    # "out_of_hours", "handoff:<reason>", "opt_out", "opt_in", "budget".
    why: str = ""


@dataclass(frozen=True, slots=True)
class Welcome:
    """WeCom's one-shot greeting for a new contact (valid 20 s after the event)."""

    welcome_code: str
    text: str


@dataclass(frozen=True, slots=True)
class PromptStaff:
    """A prompt to a staff member on the platform's staff channel. `link` is a console
    path (a task's page, or the task list) the platform may offer as a button or link;
    `title` heads the prompt where the platform shows one (a WeCom text card)."""

    platform: str
    staff_userid: str
    text: str
    link: str | None = None
    title: str = ""


@dataclass(frozen=True, slots=True)
class FetchProfile:
    """Ask the platform for a member's details (name, avatar, unionid…)."""

    platform: str
    external_id: str


@dataclass(frozen=True, slots=True)
class FetchGroup:
    """Ask the platform for a group's details (name, owner), which events leave out."""

    platform: str
    chat_id: str


@dataclass(frozen=True, slots=True)
class PullMessages:
    """Fetch waiting messages from a platform that only sends a trigger (WeChat Customer Service)."""

    platform: str
    conversation: str
    token: str


TagName = tuple[str, str]  # (group, name)


@dataclass(frozen=True, slots=True)
class MarkTags:
    """Keep a platform's own tags on the member in step with ours (WeCom corp tags)."""

    platform: str
    external_id: str
    add: tuple[TagName, ...] = ()
    remove: tuple[TagName, ...] = ()


@dataclass(frozen=True, slots=True)
class FetchTags:
    """Re-read the platform's tag list after it says tags changed (renamed, deleted…)."""

    platform: str


Action = Reply | Welcome | PromptStaff | FetchProfile | FetchGroup | PullMessages | MarkTags | FetchTags
