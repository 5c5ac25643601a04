"""The inbox's own SQLite connection: it waits for another writer's transaction rather
than failing, stores its batch once that ends, and gives up as the engine would."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

import storage.sqlite_thread as sqlite_thread
from storage.engine import create_database_engine
from storage.inbox import InboxWriter, NewInboxEntry
from storage.migrate import upgrade


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "siyu.db"
    upgrade(f"sqlite:///{path}")
    return path


def _hold_the_write_lock(path: Path) -> sqlite3.Connection:
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # what a handler's open transaction holds
    return other


async def _stored_keys(path: Path) -> list[str]:
    with sqlite3.connect(path) as reading:
        return [key for (key,) in reading.execute("SELECT key FROM inbox ORDER BY key")]


async def test_a_batch_waits_for_another_writer_and_is_stored_when_it_ends(database: Path) -> None:
    engine = create_database_engine(f"sqlite:///{database}", checkpoints=False)
    writer = InboxWriter(engine)
    writer.start()
    other = _hold_the_write_lock(database)
    adding = asyncio.gather(*(writer.add(NewInboxEntry(f"k{n}", "sandbox", "m", "{}")) for n in range(5)))
    await asyncio.sleep(0.3)
    assert not adding.done(), "the batch cannot commit while another connection writes"
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(adding, 5)
    await writer.close()
    await engine.dispose()
    assert await _stored_keys(database) == [f"k{n}" for n in range(5)]


async def test_a_writer_that_never_lets_go_fails_the_batch_after_the_busy_timeout(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_thread, "BUSY_SECONDS", 0.2)
    engine = create_database_engine(f"sqlite:///{database}", checkpoints=False)
    writer = InboxWriter(engine)
    writer.start()
    other = _hold_the_write_lock(database)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await asyncio.wait_for(writer.add(NewInboxEntry("k", "sandbox", "m", "{}")), 5)
    finally:
        other.execute("ROLLBACK")
        other.close()
    await writer.add(NewInboxEntry("k", "sandbox", "m", "{}"))  # the platform's retry is stored
    await writer.close()
    await engine.dispose()
    assert await _stored_keys(database) == ["k"]
