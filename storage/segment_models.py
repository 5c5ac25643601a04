"""The tables behind the members page's segment builder and bulk actions: named segments
(a saved filter, usable as a calendar audience) and the log of every bulk action."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from storage.models import utcnow


class Segment(SQLModel, table=True):
    """A named filter over members, kept as the builder's JSON (`storage.segments.SegmentRule`)."""

    __tablename__ = "segments"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)
    rule: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    created_by: str = Field(default="", max_length=64)  # the console login
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class BulkAction(SQLModel, table=True):
    """One bulk action from the console: who, what, on how many members."""

    __tablename__ = "bulk_actions"
    id: int | None = Field(default=None, primary_key=True)
    login: str = Field(max_length=64)
    action: str = Field(max_length=32)  # tag_add | tag_remove | assign | transfer | export
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON: the tag, the staff, the format…
    members: int = 0
    at: datetime = Field(default_factory=utcnow, index=True)
