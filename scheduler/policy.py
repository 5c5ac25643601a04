"""Delivery policy: pure decisions about whether a message may go out now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

# Kinds a member receives because they asked for it or because staff must act: these go
# out even to a member who opted out of marketing.
ALWAYS_ALLOWED = frozenset({"service", "staff_prompt", "request"})


def hold_reason(kind: str, opted_out_at: datetime | None) -> str | None:
    """Why a message of `kind` must not be sent to this member, or None if it may."""
    if kind not in ALWAYS_ALLOWED and opted_out_at is not None:
        return "member opted out of marketing"
    return None


def retry_delay(attempt: int, suggested: float | None = None) -> timedelta:
    """Wait before attempt `attempt + 1`: the platform's hint, else 2^n s up to an hour."""
    if suggested is not None:
        return timedelta(seconds=max(suggested, 1.0))
    return timedelta(seconds=min(2.0 ** max(attempt, 1), 3600.0))


def reply_window_problem(
    last_message_at: datetime | None,
    replies_since: int,
    now: datetime,
    window: timedelta = timedelta(hours=48),
    max_replies: int = 5,
) -> str | None:
    """Why a platform that allows replies only after the member writes (WeChat Customer
    Service, the official account: 48 h, 5 replies) would refuse one now, or None."""
    if last_message_at is None or now - last_message_at > window:
        hours = int(window.total_seconds() // 3600)
        return f"outside the {hours}-hour reply window since the member last wrote"
    if replies_since >= max_replies:
        return f"{max_replies} replies already sent since the member last wrote"
    return None


# Kinds that count against a member's weekly cap: content she did not ask for. Care,
# service replies and staff prompts are exempt (and counted apart).
CAPPED_KINDS = frozenset({"marketing"})
# Kinds that wait for the morning rather than wake her: nothing she is waiting for.
QUIET_KINDS = frozenset({"marketing", "care"})


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time = time(21, 30)
    end: time = time(8, 30)

    def until(self, local: datetime) -> datetime | None:
        """The end of the quiet hours `local` falls in (local time), or None outside them."""
        now = local.time()
        if self.start <= self.end:
            inside = self.start <= now < self.end
            return datetime.combine(local.date(), self.end, local.tzinfo) if inside else None
        if now >= self.start:
            return datetime.combine(local.date() + timedelta(days=1), self.end, local.tzinfo)
        if now < self.end:
            return datetime.combine(local.date(), self.end, local.tzinfo)
        return None


def cap_problem(kind: str, sent_this_week: int, cap: int | None, layer: str | None) -> str | None:
    """Why a `kind` message would break the member's weekly cap, or None."""
    if kind not in CAPPED_KINDS or cap is None or sent_this_week < cap:
        return None
    return f"weekly cap reached: {sent_this_week} of {cap} marketing messages for layer {layer or '(none)'}"
