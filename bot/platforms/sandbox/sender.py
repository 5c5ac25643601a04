"""Delivery to the sandbox: the chat page is the member's phone, and the staff panel
is a staff member's WeCom."""

from __future__ import annotations

from bot.platforms.sandbox.hub import SandboxHub, Watched, staff_key
from scheduler.delivery import OutboundMessage, SendResult
from storage.models import utcnow


class SandboxSender:
    def __init__(self, hub: SandboxHub):
        self._hub = hub

    async def send(self, message: OutboundMessage) -> SendResult:
        # A page opened later reads the conversation from the database, so a member
        # with no page open has still received the message.
        recipient: Watched = (
            staff_key(message.recipient) if message.kind == "staff_prompt" else message.recipient
        )
        self._hub.publish(
            recipient,
            {
                "key": f"outbox:{message.id}",
                "direction": "out",
                "text": message.body,
                "at": utcnow().isoformat(),
            },
        )
        return SendResult.sent(platform_msg_id=f"sandbox-{message.id}")
