"""The tables of outreach staff do through WeCom beyond chats: Moments posts from the
calendar and who was asked to publish them, customer-group welcome templates, and the
group join ways (QR codes) of channels."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.models import utcnow


class MomentPost(SQLModel, table=True):
    """One 客户朋友圈 post a calendar occurrence created (one outbox row of route moment_task)."""

    __tablename__ = "moment_posts"
    id: int | None = Field(default=None, primary_key=True)
    outbox_id: int = Field(unique=True, foreign_key="outbox.id")  # the row that created it
    entry: str = Field(max_length=64)  # the calendar entry
    title: str = Field(default="", max_length=128)
    jobid: str = Field(max_length=128)
    moment_id: str | None = Field(default=None, max_length=128, index=True)
    # creating (the job runs) | posted (staff asked to publish) | failed | deleted (gone from WeCom's list)
    status: str = Field(default="creating", max_length=16)
    problem: str | None = Field(default=None, sa_column=Column(Text))  # WeCom's reason, or who/what it left out
    created_at: datetime = Field(default_factory=utcnow)
    read_at: datetime | None = None  # last read back
    listed_at: datetime | None = None  # last seen in get_moment_list


class MomentPublisher(SQLModel, table=True):
    """A staff member WeCom asked to publish a post, and whether she has."""

    __tablename__ = "moment_publishers"
    __table_args__ = (UniqueConstraint("post_id", "userid"),)
    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="moment_posts.id", index=True)
    userid: str = Field(max_length=64)
    task_id: int | None = Field(default=None, foreign_key="staff_tasks.id")
    published_at: datetime | None = None
    likes: int = 0
    comments: int = 0


class GroupWelcome(SQLModel, table=True):
    """A customer-group welcome template (入群欢迎语素材), kept in step with WeCom."""

    __tablename__ = "group_welcomes"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=64)  # the operator's id for it
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    image_url: str | None = Field(default=None, max_length=1024)
    link_title: str | None = Field(default=None, max_length=128)
    link_url: str | None = Field(default=None, max_length=1024)
    link_desc: str | None = Field(default=None, max_length=512)
    link_picurl: str | None = Field(default=None, max_length=1024)
    notify: bool = True
    source: str = Field(default="console", max_length=16)  # config | console
    template_id: str | None = Field(default=None, max_length=128)  # WeCom's, once created there
    # pending (a change waits to reach WeCom) | synced | failed | deleting
    sync_status: str = Field(default="pending", max_length=16)
    sync_error: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: datetime = Field(default_factory=utcnow)
    synced_at: datetime | None = None


class JoinWay(SQLModel, table=True):
    """The group join way (加入群聊 QR code) of a channel code."""

    __tablename__ = "join_ways"
    __table_args__ = (Index("ix_join_ways_config_id", "config_id"),)
    channel: str = Field(primary_key=True, max_length=64)
    chat_ids: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON list, as configured
    room_name: str | None = Field(default=None, max_length=64)
    config_id: str | None = Field(default=None, max_length=128)
    qr_code: str | None = Field(default=None, max_length=1024)
    sync_status: str = Field(default="pending", max_length=16)  # pending | synced | failed
    sync_error: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: datetime = Field(default_factory=utcnow)
