"""The policy gate at send time: may this outbox row go out now, later, or never?

Asked for every row just before it is sent, so what changed since it was queued (an
opt-out, her layer, what she already received this week, the clock) decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from scheduler.policy import CAPPED_KINDS, QUIET_KINDS, QuietHours, cap_problem, hold_reason
from storage.layers import layers_of
from storage.models import Member, OutboxEntry
from storage.outbox import marketing_sent_since


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    zone: ZoneInfo | None = None
    quiet: QuietHours | None = None  # None: no quiet hours
    cap_scheme: str = "value"
    weekly_caps: Mapping[str, int] = field(default_factory=dict)  # layer → marketing messages a week
    default_cap: int | None = None  # for layers not listed (and members without a layer)


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: str  # "send" | "defer" | "hold"
    reason: str = ""
    until: datetime | None = None
    code: str = ""  # the reason in a word (a metric label): opt_out, quiet_hours, weekly_cap


SEND = Decision("send")


async def decide(session: AsyncSession, row: OutboxEntry, policy: DeliveryPolicy, now: datetime) -> Decision:
    member = await session.get(Member, row.member_id) if row.member_id is not None else None
    if (reason := hold_reason(row.kind, member.opted_out_at if member else None)) is not None:
        return Decision("hold", reason, code="opt_out")
    # Also for rows to many (a WeCom mass send): the night is quiet for all of them.
    if policy.quiet is not None and row.kind in QUIET_KINDS:
        local = now.astimezone(policy.zone) if policy.zone else now
        if (until := policy.quiet.until(local)) is not None:
            return Decision("defer", f"quiet hours until {until:%m-%d %H:%M}", until, code="quiet_hours")
    if row.member_id is None or row.kind not in CAPPED_KINDS:
        return SEND  # service replies and care: no layer or weekly count to look up
    layer = (await layers_of(session, row.member_id)).get(policy.cap_scheme)
    cap = policy.weekly_caps.get(layer or "", policy.default_cap)
    if cap is not None:
        sent = await marketing_sent_since(session, row.member_id, now - timedelta(days=7))
        if (problem := cap_problem(row.kind, sent, cap, layer)) is not None:
            return Decision("hold", problem, code="weekly_cap")
    return SEND
