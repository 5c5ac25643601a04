"""The few statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite


def dialect_insert(table: Table, dialect_name: str):  # noqa: ANN201
    """INSERT with the backend's ON CONFLICT clauses available."""
    module = postgresql if dialect_name == "postgresql" else sqlite
    return module.insert(table)


def insert_ignoring_conflicts(table: Table, dialect_name: str, unique: Sequence[str]):  # noqa: ANN201
    """INSERT … ON CONFLICT (unique) DO NOTHING, for either backend."""
    return dialect_insert(table, dialect_name).on_conflict_do_nothing(index_elements=list(unique))


def upsert(table: Table, dialect_name: str, unique: Sequence[str], values: Mapping[str, Any]):  # noqa: ANN201
    """INSERT one row, or UPDATE the row with the same `unique` columns to these values."""
    statement = dialect_insert(table, dialect_name).values(**values)
    changes = {k: statement.excluded[k] for k in values if k not in unique}
    return statement.on_conflict_do_update(index_elements=list(unique), set_=changes)
