"""The SQLite WAL stays bounded under a steady stream of commits: a passive checkpoint
never catches up with the last commit, and SQLite starts the WAL over only after one
that did, so past a size the checkpoint restarts it (storage/engine.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from storage.engine import checkpoint_wal, create_database_engine, tune_sqlite_without_checkpoints

RESTART_AFTER = 200  # pages


def write_steadily(path: Path, stop: threading.Event) -> int:
    """Commit small batches one after another, as the inbox writer does under load (it
    gathers the next batch for a moment while the loop answers)."""
    connection = sqlite3.connect(path)
    tune_sqlite_without_checkpoints(connection)
    commits = 0
    while not stop.is_set():
        with connection:
            connection.executemany("INSERT INTO notes (body) VALUES (?)", [("x" * 300,)] * 40)
        commits += 1
        time.sleep(0.002)
    connection.close()
    return commits


async def largest_wal_while_writing(path: Path, restart_after: int, seconds: float = 2.5) -> int:
    engine = create_database_engine(f"sqlite:///{path}")
    async with engine.begin() as connection:
        await connection.exec_driver_sql("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    stop = threading.Event()
    writer = asyncio.get_running_loop().run_in_executor(None, write_steadily, path, stop)
    largest = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        await checkpoint_wal(engine, restart_after_pages=restart_after)
        largest = max(largest, Path(f"{path}-wal").stat().st_size)
    stop.set()
    assert await writer > 100  # the stream was steady
    await engine.dispose()
    return largest


async def test_a_steady_stream_of_commits_does_not_grow_the_wal_without_bound(tmp_path: Path) -> None:
    largest = await largest_wal_while_writing(tmp_path / "bounded.db", RESTART_AFTER)
    # Restarted past 200 pages (0.8 MB) it stays near that (1.3 MB here); passive
    # checkpoints alone let it grow to 28 MB in these 2.5 s.
    assert largest < 8 * 1024 * 1024, f"the WAL grew to {largest / 1e6:.1f} MB"
