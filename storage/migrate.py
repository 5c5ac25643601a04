"""Apply the Alembic migrations shipped in storage/migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from storage.engine import create_sync_engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # env.py builds its engine from this attribute, not from a URL string in the ini,
    # so passwords with '%' survive and SQLite gets its pragmas.
    config.attributes["siyu_url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def head_revision() -> str:
    """The newest migration this version of siyu ships."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or "base"


def downgrade(url: str, revision: str) -> None:
    """Undo migrations down to `revision` (a rollback to an older siyu)."""
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
