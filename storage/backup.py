"""Backing up and restoring a SQLite database with SQLite's online backup API.

A backup reads one consistent snapshot while the server keeps writing (WAL: readers and
the writer do not block each other), into a new file that is checked before it takes its
name. A restore copies a checked backup into the database under an exclusive lock, and
refuses while any other connection — a running server — has the database open.
PostgreSQL is backed up with its own tools (docs/deploy.md, "Backups").
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

BUSY_SECONDS = 30.0  # a backup waits this long for the writer's lock, if it must


class BackupError(Exception):
    pass


class DatabaseInUse(BackupError):
    pass


@dataclass(frozen=True, slots=True)
class Copied:
    path: Path
    bytes: int
    seconds: float
    inbox_rows: int
    members: int


def _checked(path: Path) -> tuple[int, int]:
    """Integrity-checked, and a siyu database: (inbox rows, members)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        try:
            verdict = connection.execute("PRAGMA integrity_check").fetchone()[0]
            connection.execute("SELECT version_num FROM alembic_version").fetchone()
            inbox = connection.execute("SELECT count(*) FROM inbox").fetchone()[0]
            members = connection.execute("SELECT count(*) FROM members").fetchone()[0]
        except sqlite3.DatabaseError as error:
            raise BackupError(f"{path} is not a siyu database ({error})") from None
    if verdict != "ok":
        raise BackupError(f"{path} fails SQLite's integrity check: {verdict}")
    return int(inbox), int(members)


def backup_sqlite(database: Path, target: Path, *, overwrite: bool = False) -> Copied:
    """A consistent copy of `database` at `target`, taken while it is in use."""
    if not database.exists():
        raise BackupError(f"no database at {database}")
    if target.exists() and not overwrite:
        raise BackupError(f"{target} exists: pick a new name (or pass --force to replace it)")
    started = time.monotonic()
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=BUSY_SECONDS)
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)  # one step: one snapshot, whatever is written meanwhile
        finally:
            copy.close()
    finally:
        source.close()
    try:
        inbox, members = _checked(partial)
    except BackupError:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return Copied(target, target.stat().st_size, time.monotonic() - started, inbox, members)


def restore_sqlite(backup: Path, database: Path) -> Copied:
    """Replace `database` with `backup`. Refused while anything has `database` open; the
    database as it was is kept beside it first."""
    if not backup.exists():
        raise BackupError(f"no backup at {backup}")
    started = time.monotonic()
    inbox, members = _checked(backup)
    target = sqlite3.connect(str(database), timeout=0.2, isolation_level=None)
    try:
        target.execute("PRAGMA locking_mode=EXCLUSIVE")
        try:
            # Any other connection (a server, even idle) holds the WAL open: refused.
            target.execute("BEGIN EXCLUSIVE")
            target.execute("COMMIT")
        except sqlite3.OperationalError:
            raise DatabaseInUse(
                f"{database} is in use (a siyu process has it open): stop every siyu process first"
            ) from None
        if database.stat().st_size > 0:
            kept = database.with_name(f"{database.name}.before-restore-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}")
            with closing(sqlite3.connect(kept)) as keep:
                target.backup(keep)
        with closing(sqlite3.connect(f"file:{backup}?mode=ro", uri=True)) as source:
            source.backup(target)
    finally:
        target.close()
    return Copied(database, database.stat().st_size, time.monotonic() - started, inbox, members)
