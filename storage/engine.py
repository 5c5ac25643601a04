"""Engines for a database URL: async for the application, sync for migrations and tools."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

SessionFactory = async_sessionmaker[AsyncSession]

# SQL parameters hold message texts, remarks and phone numbers: engines keep them out of
# logs (SQLAlchemy's DEBUG lines) and out of error messages, unless the process asked
# for them (`[log] sql_parameters`, through `reveal_sql_parameters`).
_hide_parameters = True


def reveal_sql_parameters(reveal: bool) -> None:
    """Whether engines created from now on show SQL parameters in logs and errors."""
    global _hide_parameters
    _hide_parameters = not reveal


class UnsupportedDatabase(ValueError):
    pass


def _with_driver(url: str, sqlite_driver: str, pg_driver: str) -> str:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername=f"sqlite+{sqlite_driver}").render_as_string(hide_password=False)
    if backend == "postgresql":
        return parsed.set(drivername=f"postgresql+{pg_driver}").render_as_string(hide_password=False)
    raise UnsupportedDatabase(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def async_url(url: str) -> str:
    return _with_driver(url, "aiosqlite", "psycopg")


def sync_url(url: str) -> str:
    return _with_driver(url, "pysqlite", "psycopg")


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


BUSY_TIMEOUT_MS = 10_000
# A WAL file that grew in a burst is cut back to this when the WAL starts over.
WAL_FILE_LIMIT_BYTES = 64 * 1024 * 1024


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; NORMAL sync is durable across a process
    # crash (the WAL is fsynced at checkpoints), busy_timeout makes writers queue not fail.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_FILE_LIMIT_BYTES}")
    cursor.close()


def create_database_engine(
    url: str, *, checkpoints: bool = True, pool_size: int = 8, max_overflow: int = 2
) -> AsyncEngine:
    """The application's engine. `checkpoints=False` leaves WAL checkpoints to another
    connection (see `checkpoint_wal`), so commits on this one never stall copying the
    WAL back into the database file. On PostgreSQL it opens at most `pool_size` +
    `max_overflow` connections; whoever needs one beyond that waits for one (up to 60 s)."""
    if is_sqlite(url):
        # One connection: SQLite has one writer at a time, and writers that collide wait
        # in its busy handler, which sleeps 1-100 ms per try. Queueing for the one
        # connection in asyncio instead costs microseconds; WAL commits take ~0.1 ms.
        engine = create_async_engine(
            async_url(url), pool_size=1, max_overflow=0, pool_timeout=60, hide_parameters=_hide_parameters
        )
        event.listen(engine.sync_engine, "connect", _tune_sqlite if checkpoints else _tune_sqlite_no_checkpoints)
        return engine
    return create_async_engine(
        async_url(url), pool_size=pool_size, max_overflow=max_overflow, pool_timeout=60, hide_parameters=_hide_parameters
    )


def create_reading_engine(url: str, connections: int) -> AsyncEngine:
    """An engine for pages that read much and write little (the console). On SQLite a
    pool of `connections`, none of which checkpoints: WAL lets them read side by side,
    each on its own thread (aiosqlite) while SQLite works without the GIL, so a read that
    counts a million members for seconds holds up no other page. Their few writes queue
    in SQLite's busy handler behind the other writers. PostgreSQL needs no such engine:
    the main pool serves concurrent reads."""
    if not is_sqlite(url):
        raise UnsupportedDatabase("a reading engine is for SQLite: PostgreSQL pages use the main pool")
    engine = create_async_engine(
        async_url(url), pool_size=connections, max_overflow=0, pool_timeout=60, hide_parameters=_hide_parameters
    )
    event.listen(engine.sync_engine, "connect", _tune_sqlite_no_checkpoints)
    return engine


def _tune_sqlite_no_checkpoints(dbapi_connection: Any, _record: Any) -> None:
    tune_sqlite_without_checkpoints(dbapi_connection)


def tune_sqlite_without_checkpoints(dbapi_connection: Any) -> None:
    """A connection of `create_database_engine(url, checkpoints=False)`, for a connection
    opened on SQLite's own driver."""
    _tune_sqlite(dbapi_connection, None)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


# A passive checkpoint never holds writers back, but under a steady stream of commits it
# never catches up with the last one either, and SQLite starts the WAL over only after a
# checkpoint that did: at 4,000 acknowledgements a second the WAL grew by 26 MB a second,
# for as long as the stream lasted. Past this many pages (16 MB at SQLite's 4 KB pages) a
# checkpoint also restarts the WAL: that holds new writers back while it copies the few
# pages the passive one left, and waits for readers at most RESTART_WAIT_MS before giving
# up until the next checkpoint.
WAL_RESTART_PAGES = 4096
RESTART_WAIT_MS = 100


async def checkpoint_wal(engine: AsyncEngine, restart_after_pages: int = WAL_RESTART_PAGES) -> None:
    """Copy committed WAL pages into the database file without blocking writers; restart
    the WAL once it holds more than `restart_after_pages`."""
    if engine.dialect.name != "sqlite":
        return
    async with engine.connect() as connection:
        _busy, pages, _copied = (await connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")).one()
        if pages > restart_after_pages:
            await connection.exec_driver_sql(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
            try:
                await connection.exec_driver_sql("PRAGMA wal_checkpoint(RESTART)")
            finally:
                await connection.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


async def keep_planner_statistics(session: AsyncSession) -> None:
    """SQLite: ANALYZE the tables this connection's statements used whose statistics are
    missing (a new index, a database never analyzed) or outgrown (25 times the rows), as
    `PRAGMA optimize` decides — on most days nothing. Without statistics SQLite's planner
    guesses, and at a million members it starts the care scan's statements from the wrong
    index. PostgreSQL's autovacuum keeps its own."""
    if session.bind.dialect.name == "sqlite":
        await session.execute(text("PRAGMA optimize"))


# Synchronous engines serve one caller at a time (migrations, tools, the job store): a
# small pool bounds what each opens on PostgreSQL.
SYNC_POOL_SIZE, SYNC_MAX_OVERFLOW = 2, 1


def create_sync_engine(url: str) -> Engine:
    if is_sqlite(url):
        engine = create_engine(sync_url(url), hide_parameters=_hide_parameters)
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    return create_engine(sync_url(url), pool_size=SYNC_POOL_SIZE, max_overflow=SYNC_MAX_OVERFLOW, pool_timeout=60,
                         hide_parameters=_hide_parameters)


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for memory databases and other backends)."""
    if not is_sqlite(url):
        return None
    database = make_url(url).database
    return Path(database) if database and database != ":memory:" else None


def keep_private(url: str) -> None:
    """Create a SQLite database file readable by its owner only (0600), or narrow an
    existing one: it holds members' phone numbers and messages. SQLite gives its -wal and
    -shm files the database file's mode."""
    path = sqlite_file(url)
    if path is None or os.name != "posix":
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if each.exists():
            each.chmod(0o600)
