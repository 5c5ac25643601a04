"""Settings for outcomes ([outcomes] in the configuration file): what counts as a
conversion after a touch, how credit is given, the brand-wide control group, when a
comparison has enough data, and the lifetime-value scoring."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from storage.outcomes import DEFAULT_WINDOW_DAYS, KINDS


class OutcomesSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # An order this many days after a touch is a conversion, per source kind (entry,
    # occasion, channel, auto_reply, staff); kinds not named: 7 days.
    windows: dict[str, int] = {}
    # Which touch an order is credited to when several came before it within their windows.
    attribution: Literal["last", "first"] = "last"
    # The layer scheme whose layer a touch records, and by which the report splits.
    scheme: str = "value"
    # The brand-wide control group: this share of members (stable, drawn from the member
    # id) gets no marketing at all — calendar sends — to measure the whole programme.
    global_control: float = Field(default=0.0, ge=0.0, le=0.2)
    # Care (birthdays, anniversaries, win-back) is not marketing: the control group still
    # gets it unless this is false.
    control_gets_care: bool = True
    # Below these, a comparison says 数据不足 (not enough data) instead of an interval.
    min_members: int = Field(default=30, ge=2)
    min_conversions: int = Field(default=5, ge=1)
    # Lifetime value: the horizon of the expected orders and spend (`orders_90d`, `clv_90d`)...
    ltv_horizon_days: int = Field(default=90, ge=7, le=730)
    # ...and a top-layer member whose P(alive) falls under this gives her owner one task.
    at_risk_p_alive: float = Field(default=0.3, ge=0.0, le=1.0)
    # When the weekly outcomes digest goes out (crontab line, top-level timezone)...
    digest_cron: str = "0 9 * * 1"
    # ...and to whom: staff userids on the staff platform (operators who are on WeCom).
    digest_to: list[str] = []
    # When the daily LTV fit runs: before the layer recompute, which reads its scores.
    ltv_cron: str = "0 3 * * *"

    @field_validator("windows")
    @classmethod
    def _known_kinds(cls, windows: dict[str, int]) -> dict[str, int]:
        for kind, days in windows.items():
            if kind not in KINDS:
                raise ValueError(f"unknown source kind {kind!r} (use {', '.join(KINDS)})")
            if not 1 <= days <= 90:
                raise ValueError(f"windows.{kind}: {days} is not 1-90 days")
        return windows

    def window_days(self) -> dict[str, int]:
        return {kind: self.windows.get(kind, DEFAULT_WINDOW_DAYS) for kind in KINDS}
