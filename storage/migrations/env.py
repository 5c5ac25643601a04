"""Alembic environment: migrations run online against the URL siyu passes in."""

from alembic import context
from sqlalchemy import event
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)
import storage.console_models  # noqa: F401
import storage.outreach_models  # noqa: F401
import storage.config_models  # noqa: F401
import storage.segment_models  # noqa: F401
import storage.outcome_models  # noqa: F401
from storage.engine import create_sync_engine, is_sqlite

config = context.config
url = config.attributes["siyu_url"]
engine = create_sync_engine(url)
if is_sqlite(url):
    # pysqlite opens transactions only before DML; take over, so DDL is inside one too.
    @event.listens_for(engine, "connect")
    def _manual_transactions(dbapi_connection, _record):  # noqa: ANN001, ANN202
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection):  # noqa: ANN001, ANN202
        connection.exec_driver_sql("BEGIN")

try:
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=SQLModel.metadata,
            render_as_batch=is_sqlite(url),  # SQLite alters tables by copying them
            # SQLite can roll DDL back too: a migration that fails leaves the database as it was.
            transactional_ddl=True,
        )
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()
