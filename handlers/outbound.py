"""Actions into outbox rows. Keys derive from the inbox row, so handling the same row
again (after a crash, or a retry) queues nothing new."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from handlers.actions import (
    Action,
    FetchGroup,
    FetchProfile,
    FetchTags,
    MarkTags,
    PromptStaff,
    PullMessages,
    Reply,
    Welcome,
)
from handlers.updates import MessageUpdate, Update
from storage.outbox import NewOutboxMessage

# The console's task pages a staff prompt may link to (served by bot.console, which signs
# each link for the staff member it goes to).
TASK_LIST = "/admin/tasks"


def task_page(task_id: int | None) -> str:
    return f"{TASK_LIST}/{task_id}"


def prompt_meta(link: str | None, title: str = "") -> str:
    """The meta of a staff prompt row: the console path it points at, and its heading."""
    if link is None:
        return "{}"
    return json.dumps({"link": link, "title": title}, ensure_ascii=False)


def outbox_rows(
    inbox_id: int, update: Update, member_id: int | None, actions: Sequence[Action],
    received_at: datetime | None = None,
) -> list[NewOutboxMessage]:
    """`received_at`: when the callback arrived; a welcome carries it, for its latency."""
    return [_row(f"{inbox_id}:{n}", update, member_id, a, received_at) for n, a in enumerate(actions)]


def _row(
    key: str, update: Update, member_id: int | None, action: Action, received_at: datetime | None = None
) -> NewOutboxMessage:
    match action:
        case Reply(text=text, kind=kind, why=why):
            conversation = update.conversation if isinstance(update, MessageUpdate) else None
            meta = ({"conversation": conversation} if conversation else {}) | ({"why": why} if why else {})
            return NewOutboxMessage(
                f"reply:{key}", update.platform, update.sender, kind, text, member_id=member_id,
                meta=json.dumps(meta, ensure_ascii=False),
            )
        case Welcome(welcome_code=code, text=text):
            return NewOutboxMessage(
                f"welcome:{key}", update.platform, update.sender, "service", text, member_id=member_id,
                route="welcome", meta=json.dumps({"welcome_code": code} | (
                    {"received_at": received_at.isoformat()} if received_at else {}
                )),
            )
        case PromptStaff(platform=platform, staff_userid=userid, text=text, link=link, title=title):
            return NewOutboxMessage(f"prompt:{key}", platform, userid, "staff_prompt", text, meta=prompt_meta(link, title))
        case FetchProfile(platform=platform, external_id=external_id):
            return NewOutboxMessage(
                f"profile:{key}", platform, external_id, "request", "", member_id=member_id, route="profile"
            )
        case FetchGroup(platform=platform, chat_id=chat_id):
            return NewOutboxMessage(f"group:{key}", platform, chat_id, "request", "", route="group")
        case PullMessages(platform=platform, conversation=conversation, token=token):
            return NewOutboxMessage(
                f"pull:{key}", platform, conversation, "request", "", route="pull",
                meta=json.dumps({"token": token}),
            )
        case MarkTags(platform=platform, external_id=external_id, add=add, remove=remove):
            return NewOutboxMessage(
                f"tags:{key}", platform, external_id, "request", "", member_id=member_id, route="mark_tag",
                meta=json.dumps({"add": add, "remove": remove}, ensure_ascii=False),
            )
        case FetchTags(platform=platform):
            return NewOutboxMessage(f"taglist:{key}", platform, platform, "request", "", route="corp_tags")
    raise TypeError(f"unknown action {action!r}")
