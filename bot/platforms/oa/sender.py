"""Delivery to the official account: customer-service replies, and follower profiles."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.platforms.oa.updates import PLATFORM
from bot.platforms.wecom.client import OfficialAccountClient
from bot.platforms.wecom.errors import WeComApiError, WeComTransportError, outcome_unknown
from bot.platforms.wecom.outcomes import reply_window_refusal, result_for
from scheduler.delivery import OutboundMessage, SendResult
from storage.engine import SessionFactory
from storage.members import member_by_identity
from storage.merge import link_unionid
from storage.models import utcnow
from storage.outbox import UNKNOWN_OUTCOME


class OfficialAccountSender:
    def __init__(self, client: OfficialAccountClient, sessions: SessionFactory, clock: Callable[[], datetime] = utcnow):
        self._client = client
        self._sessions = sessions
        self._clock = clock

    async def send(self, message: OutboundMessage) -> SendResult:
        try:
            if message.route == "message":
                return await self._reply(message)
            if message.route == "profile":
                return await self._link_follower(message.recipient)
            return SendResult.failed(f"the official account cannot deliver route {message.route!r}")
        except (WeComApiError, WeComTransportError) as error:
            return result_for(error)

    async def _reply(self, message: OutboundMessage) -> SendResult:
        """message/custom/send has no idempotency key and nothing to ask afterwards
        (WECOM.md §9.5). After a try whose outcome is unknown, a service reply is sent
        again (she is waiting for it: a rare double beats silence); marketing and care are
        not (at most once: a double of content she did not ask for is the worse harm)."""
        at_most_once = message.kind != "service"
        if at_most_once and UNKNOWN_OUTCOME in message.last_error:
            return SendResult.failed(f"not sent again ({message.last_error}): at most once for {message.kind}",
                                     code="unknown_outcome")
        if problem := await reply_window_refusal(self._sessions, message.member_id, PLATFORM, self._clock()):
            return SendResult.failed(problem)
        try:
            await self._client.send_custom_text(message.recipient, message.body)
        except WeComTransportError as error:
            if not outcome_unknown(error):
                raise
            detail = f"{UNKNOWN_OUTCOME}: {error}"
            if at_most_once:
                return SendResult.failed(f"{detail}; not sent again: at most once for {message.kind}", code="unknown_outcome")
            return SendResult.retry(f"{detail}; a service reply is sent again", code="unknown_outcome")
        return SendResult.sent()

    async def _link_follower(self, openid: str) -> SendResult:
        """The follower's unionid ties her to the same member as her WeCom identity."""
        info = await self._client.call("GET", "/cgi-bin/user/info", query={"openid": openid, "lang": "zh_CN"})
        async with self._sessions() as session, session.begin():
            member = await member_by_identity(session, PLATFORM, openid)
            if member is not None and info.get("unionid"):
                await link_unionid(session, member, str(info["unionid"]))
        return SendResult.sent()
