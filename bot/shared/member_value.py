"""A member's lifetime value as staff and operators read it (`siyu member show`, the
console member page, the WeCom sidebar card): her P(alive), expected orders and spend
over the fit's horizon from the latest `siyu ltv fit`, or why there is none yet."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.ltv import latest_fit, score_of

# What the figures mean, for people who never heard of BG/NBD.
EXPLANATION = ("按她以往下单的次数、间隔和金额估算：她还会回来买的可能性，以及未来 {n} 天预计下单几次、"
               "花多少钱。是估算，不是承诺；可能性低的老客值得多关心。")
NO_FIT = "还没有估算（尚未运行过 siyu ltv fit）"
NOT_SCORED = "还没有估算（最近一次估算时她还没有订单）"


@dataclass(frozen=True, slots=True)
class MemberValue:
    as_of: date
    p_alive: float
    orders: float
    spend_yuan: float
    horizon_days: int

    def to_json(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "p_alive": round(self.p_alive, 4), "orders": round(self.orders, 2),
                "spend_yuan": round(self.spend_yuan, 2), "horizon_days": self.horizon_days}

    def explanation(self) -> str:
        return EXPLANATION.format(n=self.horizon_days)


@dataclass(frozen=True, slots=True)
class ValueFound:
    """Her value, or (value None) whether a fit exists at all, and so why she has none."""

    value: MemberValue | None
    fitted: bool

    @property
    def missing(self) -> str:
        return NOT_SCORED if self.fitted else NO_FIT


async def member_value(session: AsyncSession, member_id: int, default_horizon: int) -> ValueFound:
    """Her scores from the latest fit, with that fit's horizon (the setting may have
    changed since it ran)."""
    fit = await latest_fit(session)
    score = await score_of(session, member_id)
    if score is None:
        return ValueFound(None, fit is not None)
    horizon = int(json.loads(fit.params).get("horizon_days", default_horizon)) if fit else default_horizon
    return ValueFound(MemberValue(score.as_of, score.p_alive, score.orders_90d, score.clv_90d_cents / 100, horizon),
                      True)
