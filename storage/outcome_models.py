"""The tables of outcomes: every touch of a member (or her holding out of one), and her
lifetime-value scores with the fits behind them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from storage.models import utcnow


class OutcomeTouch(SQLModel, table=True):
    """A delivered member-facing message or a task done for her — or, `held_out`, the
    message she was deliberately not sent, so the two groups can be compared."""

    __tablename__ = "outcome_touches"
    __table_args__ = (
        Index("ix_outcome_touches_at", "at"),
        Index("ix_outcome_touches_member_at", "member_id", "at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="members.id")
    at: datetime
    # entry | occasion | channel | auto_reply | staff
    source_kind: str = Field(max_length=16)
    # the calendar entry id, the occasion (birthday…), the channel code's state, the task kind
    source_ref: str = Field(default="", max_length=64)
    staff_id: int | None = Field(default=None, foreign_key="staff.id")
    store_id: int | None = Field(default=None, foreign_key="stores.id")
    layer: str | None = Field(default=None, max_length=32)  # her layer then, in the outcomes scheme
    held_out: bool = False
    # outbox:<id>, task:<id>, holdout:<source key>:<member id> — once each
    ref: str = Field(unique=True, max_length=191)


class LtvScore(SQLModel, table=True):
    """A member's lifetime-value scores from the latest fit."""

    __tablename__ = "ltv_scores"
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    as_of: date
    p_alive: float
    orders_90d: float
    clv_90d_cents: float
    scored_at: datetime = Field(default_factory=utcnow)


class LtvFit(SQLModel, table=True):
    """One BG/NBD + Gamma-Gamma fit: its parameters (JSON, with the time unit) and size."""

    __tablename__ = "ltv_fits"
    id: int | None = Field(default=None, primary_key=True)
    as_of: date
    fitted_at: datetime = Field(default_factory=utcnow)
    customers: int = 0
    params: str = Field(default="{}", sa_column=Column(Text, nullable=False))
