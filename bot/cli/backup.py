"""`siyu backup FILE` and `siyu restore FILE`: SQLite's online backup while the server
runs, and a restore that refuses a database in use (storage/backup.py). PostgreSQL has
its own tools: the commands say which."""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.settings.model import Settings
from storage.backup import BackupError, Copied, backup_sqlite, restore_sqlite

POSTGRES = (
    "siyu: {what} of a PostgreSQL database is PostgreSQL's own work: "
    "pg_dump -Fc / pg_restore, or base backups with WAL archiving (docs/deploy.md, \"Backups\")"
)


def _sqlite_file(settings: Settings, what: str) -> Path | None:
    url = make_url(settings.storage.url)
    if url.get_backend_name() != "sqlite":
        print(POSTGRES.format(what=what), file=sys.stderr)
        return None
    if not url.database or url.database == ":memory:":
        print(f"siyu: {what} needs a database file ([storage] url names none)", file=sys.stderr)
        return None
    return Path(url.database)


def backup(settings: Settings, target: Path, force: bool) -> int:
    database = _sqlite_file(settings, "a backup")
    if database is None:
        return 2
    try:
        copied = backup_sqlite(database, target, overwrite=force)
    except BackupError as error:
        print(f"siyu: {error}", file=sys.stderr)
        return 1
    print(f"backed up {database} to {_told(copied)}")
    print("keep the configuration (siyu.toml, its env file) and your templates with it")
    return 0


def restore(settings: Settings, source: Path) -> int:
    database = _sqlite_file(settings, "a restore")
    if database is None:
        return 2
    try:
        copied = restore_sqlite(source, database)
    except BackupError as error:
        print(f"siyu: {error}", file=sys.stderr)
        return 1
    print(f"restored {source} into {_told(copied)}")
    print("the database as it was is kept beside it (*.before-restore-*); run `siyu db upgrade` "
          "if the backup is from an older version")
    return 0


def _told(copied: Copied) -> str:
    return (f"{copied.path} ({copied.bytes / 1e6:.1f} MB, {copied.inbox_rows} inbox rows, "
            f"{copied.members} members) in {copied.seconds:.1f} s")
