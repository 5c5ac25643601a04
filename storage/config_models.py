"""The table of configuration documents operators edit in the console, kept by version."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.models import utcnow


class ConfigVersion(SQLModel, table=True):
    """One version of one configuration document (a section such as "persona" or "tags",
    or "templates": message texts by name). The newest version of a name is in force; a
    rollback writes an old body again as a new version, so history only grows."""

    __tablename__ = "config_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)
    id: int | None = Field(default=None, primary_key=True)  # max(id) is the change counter
    name: str = Field(max_length=64, index=True)
    version: int
    body: str = Field(sa_column=Column(Text, nullable=False))  # JSON, the section as TOML holds it
    source: str = Field(max_length=16)  # toml | console | rollback
    author: str = Field(default="", max_length=128)  # who: a console login, or the file's path
    note: str = Field(default="", max_length=256)
    created_at: datetime = Field(default_factory=utcnow)
