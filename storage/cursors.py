"""Where each pull from a platform stopped, kept so a restart resumes, not restarts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialects import upsert
from storage.models import PlatformCursor


async def load_cursor(session: AsyncSession, name: str) -> str:
    row = await session.get(PlatformCursor, name)
    return row.cursor if row else ""


async def save_cursor(session: AsyncSession, name: str, cursor: str, now: datetime) -> None:
    """One upsert: two runs saving the same cursor at once (a scheduled scan and one asked
    for by hand, or two processes) must not fail on the first one's new row."""
    values = {"name": name, "cursor": cursor, "updated_at": now}
    await session.execute(upsert(PlatformCursor.__table__, session.bind.dialect.name, ["name"], values))
    loaded = session.identity_map.get(session.identity_key(PlatformCursor, name))
    if loaded is not None:  # keep a row this session already read in step with the database
        loaded.cursor, loaded.updated_at = cursor, now
