"""A SQLite connection on a thread of its own, for a writer on the acknowledgement path.

Through SQLAlchemy's asyncio engine and aiosqlite a batch's insert and commit cross
between the event loop and aiosqlite's thread four times (begin, execute, commit, the
pool's reset), each a wake-up of the loop and a greenlet switch: at thousands of
callbacks a second that cost more than SQLite's own work. Here a batch is one call on the
thread: the loop is woken once, when it is committed.

While another connection writes (a handler's transaction, which holds SQLite's write lock
across its statements), the batch waits for the lock by trying again every half
millisecond on its thread, not in SQLite's busy handler, which sleeps 1, 2, 5, 10 … 100 ms
between tries: a lock freed just after a sleep began kept every acknowledgement waiting
for the rest of it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from storage.engine import tune_sqlite_without_checkpoints

T = TypeVar("T")

# How long a batch waits for another writer, as the engine's busy timeout; how often it looks.
BUSY_SECONDS = 10.0
RETRY_SECONDS = 0.0005


class SqliteThread:
    """One connection to the database at `path`, tuned as the engine's connections that
    leave checkpoints to another (WAL, foreign keys on; a 10 s wait for the write lock),
    opened on its thread at first use."""

    def __init__(self, path: Path, name: str):
        self._path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._connection: sqlite3.Connection | None = None

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(connection)` on the thread, inside a transaction committed when it
        returns (rolled back when it raises)."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._in_transaction, work)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown()

    def _in_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._connection is None:
            self._connection = sqlite3.connect(self._path, check_same_thread=True)
            tune_sqlite_without_checkpoints(self._connection)
            self._connection.execute("PRAGMA busy_timeout=0")  # waits for the lock below instead
        deadline = time.monotonic() + BUSY_SECONDS
        while True:
            try:
                with self._connection:
                    return work(self._connection)
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
            time.sleep(RETRY_SECONDS)

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
