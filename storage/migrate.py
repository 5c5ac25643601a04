"""Apply the Alembic migrations shipped in storage/migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from filelock import FileLock
from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage.engine import create_sync_engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # env.py builds its engine from this attribute, not from a URL string in the ini,
    # so passwords with '%' survive and SQLite gets its pragmas.
    config.attributes["siyu_url"] = url
    return config


# PostgreSQL advisory lock key held while migrations run (any bigint; ours alone).
_MIGRATION_LOCK = 0x5349_5955_0000


@contextmanager
def migration_lock(url: str) -> Iterator[None]:
    """One process at a time migrates a database: several starting together on an empty
    one would otherwise each create the tables, and all but one fail. The others wait,
    then find the database at head and do nothing.

    PostgreSQL: a session advisory lock on a connection of its own (freed if the process
    dies). SQLite: a lock file beside the database file."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        engine = create_sync_engine(url)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK})
                connection.commit()
                try:
                    yield
                finally:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})
                    connection.commit()
        finally:
            engine.dispose()
        return
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        yield  # nothing another process could share
        return
    with FileLock(f"{database}.migrate.lock"):
        yield


def upgrade(url: str, revision: str = "head") -> None:
    with migration_lock(url):
        command.upgrade(alembic_config(url), revision)


def head_revision() -> str:
    """The newest migration this version of siyu ships."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or "base"


def downgrade(url: str, revision: str) -> None:
    """Undo migrations down to `revision` (a rollback to an older siyu)."""
    with migration_lock(url):
        command.downgrade(alembic_config(url), revision)


def applied_heads(url: str) -> set[str]:
    """The newest migrations applied to the database at `url` (empty when none is)."""
    engine = create_sync_engine(url)
    try:
        with engine.connect() as connection:
            return set(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()


def pending_revisions(url: str) -> list[str]:
    """Revisions not yet applied to the database at `url` (empty when up to date)."""
    script = ScriptDirectory.from_config(alembic_config(url))
    current = applied_heads(url)
    head = script.get_current_head()
    if head is None or head in current:
        return []
    return [rev.revision for rev in script.iterate_revisions(head, tuple(current) or "base")]
