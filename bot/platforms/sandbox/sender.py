"""Delivery to the sandbox: the chat page is the member's phone, and the staff panel
is a staff member's WeCom. A staff prompt with a console link gets the console's plain
address as its last line, which the panel shows as a link: the panel needs no login, so
it never carries a signed task link (that opens after a console login)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.platforms.sandbox.hub import SandboxHub, Watched, staff_key
from bot.shared.prompt_links import LinkBuilder, no_links, prompt_url
from handlers.outbound import TASK_LIST
from scheduler.delivery import OutboundMessage, SendResult
from storage.models import utcnow


class SandboxSender:
    def __init__(self, hub: SandboxHub, links: LinkBuilder = no_links):
        self._hub = hub
        self._links = links

    async def send(self, message: OutboundMessage) -> SendResult:
        # A page opened later reads the conversation from the database, so a member
        # with no page open has still received the message.
        to_staff = message.kind == "staff_prompt"
        recipient: Watched = staff_key(message.recipient) if to_staff else message.recipient
        text = with_link(message.body, message.meta, message.recipient, self._links) if to_staff else message.body
        self._hub.publish(
            recipient,
            {
                "key": f"outbox:{message.id}",
                "direction": "out",
                "text": text,
                "at": utcnow().isoformat(),
            },
        )
        return SendResult.sent(platform_msg_id=f"sandbox-{message.id}")


def with_link(text: str, meta: Mapping[str, Any], staff_userid: str, links: LinkBuilder) -> str:
    """A staff prompt as the panel shows it: with a last line holding its task link, if any."""
    url = prompt_url(meta, staff_userid, links)
    if url is None:
        return text
    label = "打开任务列表" if meta.get("link") == TASK_LIST else "打开任务"
    return f"{text.rstrip()}\n{label}：{url}"
