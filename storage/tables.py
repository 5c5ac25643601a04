"""The Core `Table` of each model, for the statements written in SQLAlchemy Core (bulk
inserts, upserts, set-based selects on the hot paths and over a million members)."""

from __future__ import annotations

from sqlalchemy import Table

from storage.models import (
    CustomerGroup,
    EngagementDay,
    GroupMembership,
    InboxEntry,
    Interaction,
    LayerAssignment,
    Member,
    MemberIdentity,
    MemberTag,
    Order,
    OutboxEntry,
    SendSlot,
    SharedValue,
    SixMomentsTouch,
    Staff,
    StaffTask,
    Store,
)
from storage.outcome_models import LtvFit, LtvScore, OutcomeTouch


def _table(model: type) -> Table:
    return model.__table__  # type: ignore[attr-defined, no-any-return]


MEMBERS = _table(Member)
IDENTITIES = _table(MemberIdentity)
MEMBER_TAGS = _table(MemberTag)
LAYERS = _table(LayerAssignment)
STAFF = _table(Staff)
STORES = _table(Store)
GROUPS = _table(CustomerGroup)
STAYS = _table(GroupMembership)  # who was in which customer group, when
INBOX = _table(InboxEntry)
OUTBOX = _table(OutboxEntry)
INTERACTIONS = _table(Interaction)
ORDERS = _table(Order)
TASKS = _table(StaffTask)
TOUCHES = _table(SixMomentsTouch)
ENGAGEMENT_DAYS = _table(EngagementDay)
SHARED_VALUES = _table(SharedValue)
SEND_SLOTS = _table(SendSlot)
OUTCOME_TOUCHES = _table(OutcomeTouch)
LTV_SCORES = _table(LtvScore)
LTV_FITS = _table(LtvFit)
