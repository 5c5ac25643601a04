"""The tables siyu keeps. Datetimes are timezone-aware and stored as UTC; local time
exists only at the edges (quiet hours, care dates, what people read)."""

from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.dialects import month_day


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """A stored time as an aware UTC time (SQLite gives them back naive)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class Store(SQLModel, table=True):
    __tablename__ = "stores"
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=64)
    name: str = Field(max_length=128)
    city: str | None = Field(default=None, max_length=64)


class Staff(SQLModel, table=True):
    __tablename__ = "staff"
    id: int | None = Field(default=None, primary_key=True)
    # The staff member's id on the messaging platform (WeCom userid, sandbox name).
    userid: str = Field(unique=True, max_length=64)
    name: str = Field(max_length=128)
    store_id: int | None = Field(default=None, foreign_key="stores.id", index=True)
    role: str = Field(default="staff", max_length=16)  # staff | manager
    active: bool = True


class Member(SQLModel, table=True):
    __tablename__ = "members"
    __table_args__ = (
        Index("ix_members_left_at", "left_at"),  # the few who left, subtracted from counts
        Index("ix_members_owner_left", "owner_staff_id", "left_at"),  # members per owner
        # One day's birthdays in one calendar are one index range: a solar member is not
        # read for a lunar month-day that shares her birth_md, nor one who left.
        Index("ix_members_birth_md_calendar", "birth_md", "birthday_calendar", "birthday_leap_month", "left_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    name: str | None = Field(default=None, max_length=128)
    phone: str | None = Field(default=None, max_length=32)
    unionid: str | None = Field(default=None, unique=True, max_length=64)
    gender: int | None = None  # 0 unknown, 1 male, 2 female (WeCom's coding)
    # The birthday as the member gave it, in its own calendar: a lunar birthday keeps its
    # lunar month and day (a lunar day may be 30, which no solar date holds); the solar
    # date of each year's occurrence is derived. The year is optional: many never say it.
    birth_year: int | None = None
    birth_month: int | None = None
    birth_day: int | None = None
    birthday_calendar: str = Field(default="solar", max_length=8)  # solar | lunar
    birthday_leap_month: bool = False
    # birth_month * 100 + birth_day, indexed so one day's birthdays are one index range.
    birth_md: int | None = None
    member_since: date | None = None
    paid_member: bool = False
    store_id: int | None = Field(default=None, foreign_key="stores.id", index=True)
    owner_staff_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    # The brand's own member number (CRM or till), by which imports find her.
    member_no: str | None = Field(default=None, unique=True, index=True, max_length=64)
    # Who brought her in: referrals count toward the super-user tiers.
    referrer_id: int | None = Field(default=None, foreign_key="members.id", index=True)
    opted_out_at: datetime | None = None
    avatar_url: str | None = Field(default=None, max_length=512)
    remark: str | None = Field(default=None, max_length=128)  # the owner staff's note on her
    # Set when the member ended the relationship (deleted the staff, was deleted);
    # cleared when she comes back. Churn is a fact to act on, not a deletion.
    left_at: datetime | None = None
    left_reason: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


# A day's joining anniversaries are one index range too (the care scan's). SQLite cannot
# reflect an index on an expression: a later migration that rebuilds `members` with
# batch_alter_table must create this one again (tests/test_storage.py checks its SQL).
# Who joined later in the year's day or left is told inside the index, without her row.
Index("ix_members_since_md", month_day(Member.member_since), Member.member_since, Member.left_at)  # type: ignore[arg-type]


class MemberIdentity(SQLModel, table=True):
    """One member may be known on several platforms (sandbox name, external_userid, openid)."""

    __tablename__ = "member_identities"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="members.id", index=True)
    platform: str = Field(max_length=16)
    external_id: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow)


class Tag(SQLModel, table=True):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("group", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    group: str = Field(default="", max_length=64)
    # The same tag's id on the platform it is kept in step with (a WeCom corp tag id).
    platform_tag_id: str | None = Field(default=None, max_length=64, index=True)


class MemberTag(SQLModel, table=True):
    """Why a member has a tag: who or what set it, when first and last, how often."""

    __tablename__ = "member_tags"
    # Counting what each rule gave (the console's rules page) reads this index alone.
    __table_args__ = (Index("ix_member_tags_counts", "tag_id", "source", "source_ref", "last_seen"),)
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    tag_id: int = Field(foreign_key="tags.id", primary_key=True, index=True)
    source: str = Field(max_length=16)  # rule | staff | import | platform
    source_ref: str | None = Field(default=None, max_length=128)  # rule id, staff userid…
    first_seen: datetime = Field(default_factory=utcnow)
    last_seen: datetime = Field(default_factory=utcnow)
    hit_count: int = 1


class InterestScore(SQLModel, table=True):
    """A member's interest in a topic: the sum of the weights of the rule hits behind it."""

    __tablename__ = "interest_scores"
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    topic: str = Field(primary_key=True, max_length=64)
    score: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class Interaction(SQLModel, table=True):
    __tablename__ = "interactions"
    __table_args__ = (
        Index("ix_interactions_member_at", "member_id", "at"),
        # Day ranges (engagement, windows that move; whose was a day's activity, for
        # win-back) without reading the rows.
        Index("ix_interactions_at", "at", "kind", "member_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="members.id")
    kind: str = Field(max_length=16)  # message_in | message_out (ours) | staff_out (a person's) | event
    platform: str = Field(max_length=16)
    at: datetime = Field(default_factory=utcnow)
    text: str | None = Field(default=None, sa_column=Column(Text))
    # "inbox:<id>" or "outbox:<id>": the row this interaction came from, unique so a
    # replayed inbox row or a re-marked delivery never counts twice.
    ref: str | None = Field(default=None, unique=True, max_length=64)


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_member_time_amount", "member_id", "ordered_at", "amount_cents"),
        Index("ix_orders_ordered_at", "ordered_at", "member_id"),  # day ranges, orders leaving a window: whose
    )
    id: int | None = Field(default=None, primary_key=True)
    order_no: str = Field(unique=True, max_length=64)
    member_id: int = Field(foreign_key="members.id")
    store_id: int | None = Field(default=None, foreign_key="stores.id")
    amount_cents: int = Field(sa_type=BigInteger)
    ordered_at: datetime


class InboxEntry(SQLModel, table=True):
    """An update acknowledged to a platform. Written before the ack; processed after."""

    __tablename__ = "inbox"
    __table_args__ = (
        Index("ix_inbox_status_id", "status", "id"),
        Index("ix_inbox_sender_status", "platform", "sender", "status"),
        Index("ix_inbox_status_urgent_id", "status", "urgent", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=191)
    platform: str = Field(max_length=16)
    sender: str = Field(max_length=128)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime = Field(default_factory=utcnow)
    status: str = Field(default="pending", max_length=16)  # pending | done | failed
    attempts: int = 0
    processed_at: datetime | None = None
    error: str | None = Field(default=None, sa_column=Column(Text))
    # Handled ahead of any backlog: an update that must be answered within seconds
    # (a new contact's welcome code lives 20 s).
    urgent: bool = False
    # The claim: which process is handling the row, until when. Another process takes a
    # row over once its claim has expired (its claimant died).
    claimed_by: str | None = Field(default=None, max_length=64)
    claim_until: datetime | None = None


class OutboxEntry(SQLModel, table=True):
    """Every message to a member or a staff member, sent by the delivery loop."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_not_before", "status", "not_before"),)
    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True, max_length=191)
    platform: str = Field(max_length=16)
    recipient: str = Field(max_length=128)
    member_id: int | None = Field(default=None, foreign_key="members.id", index=True)
    staff_id: int | None = Field(default=None, foreign_key="staff.id")
    kind: str = Field(max_length=16)  # service | marketing | care | staff_prompt | request
    # What the platform is asked to do: "message" (a text to the recipient), or a
    # platform request such as "welcome" or "profile"; `meta` holds its JSON parameters.
    route: str = Field(default="message", max_length=32, sa_column_kwargs={"server_default": "message"})
    meta: str = Field(default="{}", sa_column=Column(Text, nullable=False, server_default="{}"))
    body: str = Field(sa_column=Column(Text, nullable=False))
    # pending | deferred (quiet hours: not before `not_before`) | sending | sent | failed | held
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    not_before: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    platform_msg_id: str | None = Field(default=None, max_length=128)
    # A `sending` row's claim: which process holds it and until when. The holder renews it
    # while the send runs; once it lapses the reaper gives the row to any process.
    claimed_by: str | None = Field(default=None, max_length=64)
    claim_expires_at: datetime | None = None


class SharedValue(SQLModel, table=True):
    """A short-lived secret every process uses (an access token, a JS-SDK ticket), fetched
    by one process at a time and read by all."""

    __tablename__ = "shared_values"
    name: str = Field(primary_key=True, max_length=191)
    value: str = Field(sa_column=Column(Text, nullable=False))
    expires_at: datetime
    updated_at: datetime = Field(default_factory=utcnow)


class SendSlot(SQLModel, table=True):
    """One send counted against a platform's per-recipient limit, shared by all processes."""

    __tablename__ = "send_slots"
    __table_args__ = (Index("ix_send_slots_key_sent_at", "key", "sent_at"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=191)
    sent_at: datetime


class StaffTask(SQLModel, table=True):
    __tablename__ = "staff_tasks"
    __table_args__ = (
        Index("ix_staff_tasks_due_date", "due_date"),  # the day's tasks, rates over a window
        Index("ix_staff_tasks_status_staff", "status", "staff_id"),  # open work per person
    )
    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True, max_length=191)
    staff_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    member_id: int | None = Field(default=None, foreign_key="members.id", index=True)
    kind: str = Field(max_length=32)
    title: str = Field(max_length=256)
    body: str = Field(default="", sa_column=Column(Text, nullable=False))
    due_date: date
    status: str = Field(default="open", max_length=16)  # open | done | skipped
    note: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    done_at: datetime | None = None


class LayerAssignment(SQLModel, table=True):
    """A member's current layer in one scheme, with the metric values that led to it."""

    __tablename__ = "layer_assignments"
    __table_args__ = (
        UniqueConstraint("member_id", "scheme"),
        Index("ix_layer_assignments_scheme_layer", "scheme", "layer"),
        # A member's layer read from the index alone: the care scan asks it of every
        # member whose birthday or anniversary is near.
        Index("ix_layer_assignments_member_scheme_layer", "member_id", "scheme", "layer"),
    )
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="members.id")
    scheme: str = Field(max_length=32)
    layer: str = Field(max_length=32)
    metrics: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON
    assigned_at: datetime = Field(default_factory=utcnow)


class LayerMove(SQLModel, table=True):
    """History: every change of a member's layer in a scheme."""

    __tablename__ = "layer_moves"
    __table_args__ = (Index("ix_layer_moves_member_scheme", "member_id", "scheme"),)
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="members.id")
    scheme: str = Field(max_length=32)
    from_layer: str | None = Field(default=None, max_length=32)
    to_layer: str = Field(max_length=32)
    moved_at: datetime = Field(default_factory=utcnow)


class LayerRun(SQLModel, table=True):
    """Where the last layer computation of a scheme stopped, so the next one can take only
    the members whose inputs changed, and the RFM cut points it scored with."""

    __tablename__ = "layer_runs"
    scheme: str = Field(primary_key=True, max_length=32)
    ran_at: datetime
    last_order_id: int = 0
    last_interaction_id: int = 0
    cut_points: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON


class EngagementDay(SQLModel, table=True):
    """One layer's engagement on one local day: the series behind the console's charts."""

    __tablename__ = "engagement_days"
    day: date = Field(primary_key=True)
    scheme: str = Field(primary_key=True, max_length=32)
    layer: str = Field(primary_key=True, max_length=32)
    members: int = 0
    joined: int = 0
    left: int = 0
    active: int = 0  # members who interacted that day
    messages_in: int = 0
    messages_out: int = 0
    bot_replies: int = 0
    staff_replies: int = 0
    median_first_reply_seconds: float | None = None
    care_sent: int = 0
    tasks_due: int = 0
    tasks_done_on_time: int = 0
    orders: int = 0
    revenue_cents: int = Field(default=0, sa_type=BigInteger)
    computed_at: datetime = Field(default_factory=utcnow)


class CustomerGroup(SQLModel, table=True):
    """A customer group chat (客户群) the brand's staff own."""

    __tablename__ = "customer_groups"
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    chat_id: str = Field(max_length=128)
    name: str | None = Field(default=None, max_length=128)
    owner: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    dismissed_at: datetime | None = None
    __table_args__ = (UniqueConstraint("platform", "chat_id"),)


class GroupMembership(SQLModel, table=True):
    """Who joined and left a group, and when: one row per stay."""

    __tablename__ = "group_memberships"
    __table_args__ = (Index("ix_group_memberships_group_user", "group_id", "user_id"),)
    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="customer_groups.id")
    user_id: str = Field(max_length=128)  # external_userid or staff userid
    member_id: int | None = Field(default=None, foreign_key="members.id", index=True)
    joined_at: datetime
    left_at: datetime | None = None
    join_scene: str | None = Field(default=None, max_length=8)
    quit_scene: str | None = Field(default=None, max_length=8)


class PlatformCursor(SQLModel, table=True):
    """Where a pull from a platform stopped (e.g. WeChat Customer Service sync_msg)."""

    __tablename__ = "platform_cursors"
    name: str = Field(primary_key=True, max_length=128)
    cursor: str = Field(max_length=512)
    updated_at: datetime = Field(default_factory=utcnow)


class CalendarEntry(SQLModel, table=True):
    """A piece of persona content on the operator's calendar (the console and
    `siyu calendar load` edit these; a running server reads them at each scan)."""

    __tablename__ = "calendar_entries"
    id: str = Field(primary_key=True, max_length=64)  # the operator's own id
    cron: str | None = Field(default=None, max_length=64)  # recurring, in the brand's zone
    at: datetime | None = None  # or once
    # JSON: {"scheme": "value", "layers": [...], "tags": [...], "exclude_tags": [...],
    #        "stores": [...], "lifecycle": [...]}
    audience: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    template: str = Field(max_length=128)
    channel: str = Field(max_length=32)  # wecom_mass | wecom_group_mass | wecom_moments | kf | oa | staff_task
    title: str = Field(default="", max_length=128)
    # JSON: a Moments post's {"images": [file names], "link": {"title", "url", "cover"}}
    attachments: str = Field(default="{}", sa_column=Column(Text, nullable=False, server_default="{}"))
    paused: bool = False
    # When it was last resumed: occurrences up to then were missed while paused, and a
    # scan catching up after downtime must not send them.
    resumed_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)
    # The share of the audience held out of each occurrence, to measure it (成效).
    holdout: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})


class SixMomentsTouch(SQLModel, table=True):
    """One of the six planned touches of a top-layer member's year (六次互动)."""

    __tablename__ = "six_moments"
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    year: int = Field(primary_key=True)  # the plan's year, from the planning day
    slot: int = Field(primary_key=True)  # 1..6 in date order
    kind: str = Field(max_length=32)  # birthday | anniversary | festival | preview | check_in | invitation
    due_date: date = Field(index=True)
    label: str = Field(default="", max_length=64)
    task_id: int | None = Field(default=None, foreign_key="staff_tasks.id")
    planned_at: datetime = Field(default_factory=utcnow)


class SchedulerRun(SQLModel, table=True):
    """Each scheduled job's last run, so a run missed while no scheduler was leading
    (a restart, a failover) is caught up once, within its grace."""

    __tablename__ = "scheduler_runs"
    job: str = Field(primary_key=True, max_length=64)
    # The scheduled time of the last run that finished (or was let go): runs due after
    # it and not yet finished are the missed ones.
    fired_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    status: str = Field(default="", max_length=16)  # running | done | failed | skipped | baseline
    holder: str = Field(default="", max_length=128)  # the process that ran it last
    detail: str | None = Field(default=None, sa_column=Column(Text))


class RuntimeLease(SQLModel, table=True):
    """A named lease one process holds until `expires_at` and renews while it lives: on
    SQLite, which has no advisory locks, the scheduler's leadership."""

    __tablename__ = "runtime_leases"
    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=128)
    expires_at: datetime
    renewed_at: datetime = Field(default_factory=utcnow)


class SeenCallback(SQLModel, table=True):
    """A callback's signature triple (a digest of signature, timestamp and nonce), kept
    for the replay window so that a second request with the same triple is refused by
    every process; rows older than the window are pruned."""

    __tablename__ = "seen_callbacks"
    platform: str = Field(primary_key=True, max_length=16)
    digest: str = Field(primary_key=True, max_length=64)
    seen_at: datetime = Field(index=True)
