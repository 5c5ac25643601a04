"""Database sessions for one command: an engine opened for the command and closed after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.settings.model import Settings
from storage.engine import SessionFactory, create_database_engine, session_factory


@asynccontextmanager
async def open_sessions(settings: Settings) -> AsyncIterator[SessionFactory]:
    engine = create_database_engine(settings.storage.url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()
