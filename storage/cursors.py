"""Where each pull from a platform stopped, kept so a restart resumes, not restarts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import PlatformCursor


async def load_cursor(session: AsyncSession, name: str) -> str:
    row = await session.get(PlatformCursor, name)
    return row.cursor if row else ""


async def save_cursor(session: AsyncSession, name: str, cursor: str, now: datetime) -> None:
    row = await session.get(PlatformCursor, name)
    if row is None:
        session.add(PlatformCursor(name=name, cursor=cursor, updated_at=now))
    else:
        row.cursor, row.updated_at = cursor, now
        session.add(row)
