"""The few statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


def dialect_insert(table: Table, dialect_name: str):  # noqa: ANN201
    """INSERT with the backend's ON CONFLICT clauses available."""
    module = postgresql if dialect_name == "postgresql" else sqlite
    return module.insert(table)


def insert_ignoring_conflicts(table: Table, dialect_name: str, unique: Sequence[str]):  # noqa: ANN201
    """INSERT … ON CONFLICT (unique) DO NOTHING, for either backend."""
    return dialect_insert(table, dialect_name).on_conflict_do_nothing(index_elements=list(unique))


class SqliteInsertIgnoringConflicts:
    """INSERT … ON CONFLICT (unique) DO NOTHING on SQLite's driver, one `?` per column: for
    thousands of rows at once, where SQLAlchemy's processing of each row's parameters
    costs more than SQLite's insert (values given as `sqlite_utc_text`, `sqlite_date_text`)."""

    def __init__(self, table: Table, columns: Sequence[str], unique: Sequence[str]):
        self.sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                    f" ON CONFLICT ({', '.join(unique)}) DO NOTHING")

    async def run(self, session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> None:
        await session.flush()  # what session.execute would have done first
        await (await session.connection()).exec_driver_sql(self.sql, list(rows))


def sqlite_utc_text(moment: datetime) -> str:
    """An aware datetime as a UTCDateTime column stores it in SQLite: its UTC time as text,
    "2026-11-22 22:05:00.000000" (a naive one is refused, as the column refuses it)."""
    if moment.utcoffset() is None:
        raise ValueError("Datetime values must have timezone information")
    return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")


def sqlite_date_text(day: date) -> str:
    """A date as a Date column stores it in SQLite: "2026-11-23"."""
    return f"{day.year:04d}-{day.month:02d}-{day.day:02d}"


def upsert(table: Table, dialect_name: str, unique: Sequence[str], values: Mapping[str, Any]):  # noqa: ANN201
    """INSERT one row, or UPDATE the row with the same `unique` columns to these values."""
    statement = dialect_insert(table, dialect_name).values(**values)
    changes = {k: statement.excluded[k] for k in values if k not in unique}
    return statement.on_conflict_do_update(index_elements=list(unique), set_=changes)


class month_day(FunctionElement[int]):  # noqa: N801 (a SQL function, named like one)
    """A date's month * 100 + day (1123 for 23 November), as `members.birth_md` keeps a
    birthday's. Spelled per backend so that an index on it serves the statements that
    use it: PostgreSQL indexes only immutable expressions (EXTRACT is, `to_char` is not),
    and SQLite uses an index on an expression only for the very same expression, literals
    included — so the numbers below are written into the SQL, never bound."""

    type = Integer()
    name = "month_day"
    inherit_cache = True


@compiles(month_day, "sqlite")
def _month_day_on_sqlite(element: month_day, compiler: SQLCompiler, **kw: Any) -> str:
    day = compiler.process(element.clauses, **kw)  # SQLite keeps a date as 'YYYY-MM-DD'
    return f"(substr({day}, 6, 2) * 100 + substr({day}, 9, 2))"


@compiles(month_day, "postgresql")
def _month_day_on_postgresql(element: month_day, compiler: SQLCompiler, **kw: Any) -> str:
    day = compiler.process(element.clauses, **kw)
    return f"(EXTRACT(month FROM {day}) * 100 + EXTRACT(day FROM {day}))"
