"""The few statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignoring_conflicts(table: Table, dialect_name: str, unique: Sequence[str]):  # noqa: ANN201
    """INSERT … ON CONFLICT (unique) DO NOTHING, for either backend."""
    module = postgresql if dialect_name == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing(index_elements=list(unique))
