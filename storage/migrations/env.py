"""Alembic environment: migrations run online against the URL siyu passes in."""

from alembic import context
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from storage.engine import create_sync_engine, is_sqlite

config = context.config
url = config.attributes["siyu_url"]
engine = create_sync_engine(url)
try:
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=SQLModel.metadata,
            render_as_batch=is_sqlite(url),  # SQLite alters tables by copying them
        )
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()
