"""What WeCom's and the official account's senders share: how API failures become send
results, and the reply window both platforms enforce after a member writes."""

from __future__ import annotations

from datetime import datetime

from bot.platforms.wecom.errors import WeComApiError, WeComRateLimited, WeComTransportError
from scheduler.delivery import SendResult
from scheduler.policy import reply_window_problem
from storage.engine import SessionFactory
from storage.interactions import reply_window_state

ApiFailure = WeComApiError | WeComRateLimited | WeComTransportError


def result_for(error: ApiFailure) -> SendResult:
    """Permanent errors fail the row with errcode and errmsg; the rest are retried later."""
    if isinstance(error, WeComApiError):
        detail, code = f"errcode {error.errcode}: {error.errmsg}", str(error.errcode)
        if error.kind == "permanent":
            return SendResult.failed(detail, code)
        return SendResult.retry(detail, error.retry_after, code)
    if isinstance(error, WeComRateLimited):
        return SendResult.retry(str(error), error.retry_after, "rate_limited")
    code = f"http_{error.status}" if error.status else ("timeout" if "Timeout" in error.reason else "transport")
    return SendResult.retry(str(error), code=code) if error.retryable else SendResult.failed(str(error), code)


async def reply_window_refusal(
    sessions: SessionFactory, member_id: int | None, platform: str, now: datetime
) -> str | None:
    """Why a reply to this member would be refused now (48 h, 5 replies), or None."""
    if member_id is None:
        return None
    async with sessions() as session:
        last_in, replies = await reply_window_state(session, member_id, platform)
    return reply_window_problem(last_in, replies, now)
