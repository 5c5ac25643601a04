"""Delivery to WeCom: outbox rows into API calls, API answers into send results.

Routes: "message" (a prompt to staff by app message, or a reply to a member through
WeChat Customer Service), "welcome" (the new-contact greeting), and the requests
"profile", "group" and "pull" whose answers are written into our storage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from bot.platforms.wecom import kf
from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.contacts import apply_contact, apply_group
from bot.platforms.wecom.errors import WeComApiError, WeComRateLimited, WeComTransportError
from bot.platforms.wecom.outcomes import reply_window_refusal, result_for
from bot.platforms.wecom.updates import PLATFORM
from handlers.updates import to_payload
from scheduler.delivery import OutboundMessage, SendResult
from storage.cursors import load_cursor, save_cursor
from storage.engine import SessionFactory
from storage.inbox import InboxWriter, NewInboxEntry
from storage.models import utcnow

log = logging.getLogger(__name__)
ALREADY_GREETED = 41051


class WeComSender:
    def __init__(
        self,
        client: WeComClient,
        sessions: SessionFactory,
        agent_id: int,
        inbox: Callable[[], InboxWriter],
        clock: Callable[[], datetime] = utcnow,
    ):
        self._client = client
        self._sessions = sessions
        self._agent_id = agent_id
        self._inbox = inbox
        self._clock = clock

    async def send(self, message: OutboundMessage) -> SendResult:
        try:
            match message.route:
                case "message" if message.kind == "staff_prompt":
                    result = await self._client.send_text_to_staff(message.recipient, self._agent_id, message.body)
                    if result.invalid_users:
                        return SendResult.failed(f"not a WeCom user of this app: {', '.join(result.invalid_users)}")
                    return SendResult.sent(result.msgid)
                case "message":
                    return await self._reply_to_member(message)
                case "welcome":
                    return await self._welcome(message)
                case "profile":
                    detail = await self._client.get_external_contact(message.recipient)
                    async with self._sessions() as session, session.begin():
                        await apply_contact(session, detail["external_contact"], detail.get("follow_user", []), self._clock())
                    return SendResult.sent()
                case "group":
                    chat = await self._client.groupchat_get(message.recipient)
                    async with self._sessions() as session, session.begin():
                        await apply_group(session, chat.get("group_chat", chat), self._clock())
                    return SendResult.sent()
                case "pull":
                    pulled = await self._pull(message.recipient.removeprefix("kf:"), str(message.meta.get("token", "")))
                    return SendResult.sent(f"{pulled} messages")
            return SendResult.failed(f"WeCom cannot deliver route {message.route!r}")
        except (WeComApiError, WeComRateLimited, WeComTransportError) as error:
            return result_for(error)

    async def _reply_to_member(self, message: OutboundMessage) -> SendResult:
        conversation = str(message.meta.get("conversation") or "")
        if not conversation.startswith("kf:"):
            # Customer contacts are reached by staff (mass sends they confirm), never
            # directly by the app: only Customer Service conversations take replies.
            return SendResult.failed("no WeChat Customer Service conversation to reply in")
        if problem := await reply_window_refusal(self._sessions, message.member_id, PLATFORM, self._clock()):
            return SendResult.failed(problem)
        # Our own msgid makes a retried send one message on the member's phone.
        msgid = await self._client.kf_send_text(
            message.recipient, conversation.removeprefix("kf:"), message.body, msgid=f"siyu{message.id}"
        )
        return SendResult.sent(msgid)

    async def _welcome(self, message: OutboundMessage) -> SendResult:
        try:
            await self._client.send_welcome_msg(str(message.meta["welcome_code"]), message.body)
        except WeComApiError as error:
            if error.errcode == ALREADY_GREETED:
                return SendResult.sent("already greeted")  # delivered before, or she chatted first
            raise
        return SendResult.sent()

    async def _pull(self, open_kfid: str, token: str) -> int:
        """Pull every waiting Customer Service message into the inbox, then move the cursor."""
        name, pulled = kf.cursor_name(open_kfid), 0
        async with self._sessions() as session:
            cursor = await load_cursor(session, name)
        while True:
            page = await self._client.kf_sync_msg(token, cursor, open_kfid)
            updates = [u for u in map(kf.to_message, page.messages) if u is not None]
            # One gather: the inbox commits the page in one batch.
            await asyncio.gather(
                *(self._inbox().add(NewInboxEntry(u.key, PLATFORM, u.sender, to_payload(u))) for u in updates)
            )
            pulled += len(updates)
            cursor = page.next_cursor or cursor
            async with self._sessions() as session, session.begin():
                await save_cursor(session, name, cursor, self._clock())
            if not page.has_more:
                return pulled
