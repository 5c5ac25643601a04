"""Queries over versioned configuration documents (`config_versions`).

A document is one section of the configuration, as JSON in the shape TOML gives it. Its
newest version is in force. `change_stamp` is the cheap question every process asks every
few seconds: the highest row id, which grows with every save, rollback or file load.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.config_models import ConfigVersion
from storage.models import as_utc

SOURCES = ("toml", "console", "rollback")


@dataclass(frozen=True, slots=True)
class Document:
    name: str
    version: int
    body: Any
    source: str
    author: str
    note: str
    created_at: datetime
    id: int


def _document(row: ConfigVersion) -> Document:
    assert row.id is not None
    created = as_utc(row.created_at)
    return Document(row.name, row.version, json.loads(row.body), row.source, row.author, row.note, created, row.id)


def canonical(body: Any) -> str:
    """The stored text of a body: sorted keys, so equal bodies compare equal as text."""
    return json.dumps(body, ensure_ascii=False, sort_keys=True)


async def change_stamp(session: AsyncSession) -> int:
    # A bare max() of the key: SQLite answers it from the index's end (coalesce() would scan).
    return int((await session.execute(select(func.max(ConfigVersion.id)))).scalar_one() or 0)


async def current_documents(session: AsyncSession) -> dict[str, Document]:
    """The newest version of every document."""
    newest = (select(ConfigVersion.name, func.max(ConfigVersion.version).label("version"))
              .group_by(ConfigVersion.name).subquery())
    rows = await session.execute(select(ConfigVersion).join(
        newest, (ConfigVersion.name == newest.c.name) & (ConfigVersion.version == newest.c.version)))
    return {row.name: _document(row) for row in rows.scalars()}


async def last_from_file(session: AsyncSession) -> dict[str, Document]:
    """The newest version of every document that a TOML load wrote."""
    newest = (select(func.max(ConfigVersion.id).label("id")).where(ConfigVersion.source == "toml")
              .group_by(ConfigVersion.name).subquery())
    rows = await session.execute(select(ConfigVersion).where(ConfigVersion.id.in_(select(newest.c.id))))
    return {row.name: _document(row) for row in rows.scalars()}


async def history(session: AsyncSession, name: str, limit: int = 50) -> list[Document]:
    """A document's versions, newest first."""
    rows = await session.execute(select(ConfigVersion).where(ConfigVersion.name == name)
                              .order_by(ConfigVersion.version.desc()).limit(limit))
    return [_document(row) for row in rows.scalars()]


async def version_of(session: AsyncSession, name: str, version: int) -> Document | None:
    row = (await session.execute(select(ConfigVersion).where(
        ConfigVersion.name == name, ConfigVersion.version == version))).scalars().first()
    return _document(row) if row is not None else None


async def save_document(session: AsyncSession, name: str, body: Any, *, source: str, author: str,
                        note: str = "") -> Document | None:
    """A new version of `name` (the caller commits); None when `body` is what is in force."""
    assert source in SOURCES
    text = canonical(body)
    row = (await session.execute(select(ConfigVersion).where(ConfigVersion.name == name)
                              .order_by(ConfigVersion.version.desc()).limit(1))).scalars().first()
    if row is not None and canonical(json.loads(row.body)) == text:
        return None
    saved = ConfigVersion(name=name, version=(row.version + 1) if row else 1, body=text, source=source,
                          author=author[:128], note=note[:256])
    session.add(saved)
    await session.flush()
    return _document(saved)


async def save_documents(session: AsyncSession, bodies: Mapping[str, Any], *, source: str,
                         author: str, note: str = "") -> list[str]:
    """Several documents at once (one file load); the names that changed."""
    changed = []
    for name, body in bodies.items():
        if await save_document(session, name, body, source=source, author=author, note=note) is not None:
            changed.append(name)
    return changed
