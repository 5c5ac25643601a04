"""Bulk writes for `siyu import`: members upserted by member_no and orders inserted by
order_no, a chunk of rows per statement, with SQLAlchemy Core on one sync connection (no
ORM: at a million rows its per-object cost would be most of the run).

Each function works inside the caller's transaction; the caller commits per chunk."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from storage.dialects import insert_ignoring_conflicts
from storage.tables import MEMBERS, ORDERS, STAFF, STORES

# The member columns an import may set; the rest (unionid, platform state…) it leaves alone.
MEMBER_COLUMNS = (
    "name", "phone", "birth_year", "birth_month", "birth_day", "birthday_calendar", "birthday_leap_month",
    "birth_md", "member_since", "paid_member", "store_id", "owner_staff_id", "referrer_id",
)
ORDER_COLUMNS = ("order_no", "member_id", "store_id", "amount_cents", "ordered_at")
# IN lists longer than this are split (SQLite allows 32,766 parameters, psycopg 65,535).
_IN_LIMIT = 20_000


def prepare_connection(connection: Connection) -> None:
    """SQLite settings for the import's own connection. A chunk of orders lands all over
    the (member, time) index, so each commit dirties most of its pages: a 64 MiB page
    cache keeps them, and a checkpoint every 40,000 WAL pages (160 MiB) instead of every
    1,000 copies each of them into the database once per several chunks instead of once
    per chunk (measured: a fifth of the import's time). The WAL is cut back to 64 MiB
    after a checkpoint."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA cache_size=-65536")
        connection.exec_driver_sql("PRAGMA wal_autocheckpoint=40000")
        connection.exec_driver_sql("PRAGMA journal_size_limit=67108864")
        connection.commit()


def finish_connection(connection: Connection) -> None:
    """Copy what the import wrote from the WAL into the database, without waiting."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        connection.commit()


def _slices(keys: Collection[str]) -> Iterable[list[str]]:
    items = list(keys)
    for start in range(0, len(items), _IN_LIMIT):
        yield items[start:start + _IN_LIMIT]


def store_ids(connection: Connection) -> dict[str, int]:
    """Store code → id (stores are few: all of them)."""
    return {code: id_ for id_, code in connection.execute(select(STORES.c.id, STORES.c.code))}


def staff_ids(connection: Connection) -> dict[str, int]:
    """Staff userid → id."""
    return {userid: id_ for id_, userid in connection.execute(select(STAFF.c.id, STAFF.c.userid))}


# Statements built once, their IN lists given at execution: a statement built around a
# list holds it in reference cycles, and the import runs with the cycle collector paused.
_MEMBER_IDS = select(MEMBERS.c.member_no, MEMBERS.c.id).where(MEMBERS.c.member_no.in_(bindparam("keys", expanding=True)))
_MEMBER_ROWS = select(MEMBERS.c.id, MEMBERS.c.member_no, *(MEMBERS.c[name] for name in MEMBER_COLUMNS)).where(
    MEMBERS.c.member_no.in_(bindparam("keys", expanding=True))
)
_ORDER_ROWS = select(*(ORDERS.c[name] for name in ORDER_COLUMNS)).where(
    ORDERS.c.order_no.in_(bindparam("keys", expanding=True))
)


def member_ids(connection: Connection, member_nos: Collection[str]) -> dict[str, int]:
    """member_no → member id, for those of `member_nos` we have: one SELECT … IN."""
    found: dict[str, int] = {}
    for keys in _slices(member_nos):
        found.update((no, id_) for no, id_ in connection.execute(_MEMBER_IDS, {"keys": keys}))
    return found


# ── Members ──────────────────────────────────────────────────────────────────────────


def members_by_no(connection: Connection, member_nos: Collection[str]) -> dict[str, dict[str, Any]]:
    """member_no → the member's id and importable columns, for those we have."""
    found: dict[str, dict[str, Any]] = {}
    for keys in _slices(member_nos):
        for row in connection.execute(_MEMBER_ROWS, {"keys": keys}).mappings():
            found[row["member_no"]] = dict(row)
    return found


def insert_members(connection: Connection, rows: Sequence[dict[str, Any]], now: datetime) -> None:
    """New members, each a dict of member_no and any of MEMBER_COLUMNS. A member_no that
    exists by now (written by someone else meanwhile) is left as it is."""
    if not rows:
        return
    defaults = {
        name: None for name in MEMBER_COLUMNS
    } | {"birthday_calendar": "solar", "birthday_leap_month": False, "paid_member": False}
    values = [defaults | row | {"created_at": now, "updated_at": now} for row in rows]
    connection.execute(insert_ignoring_conflicts(MEMBERS, connection.dialect.name, ["member_no"]), values)


def update_members(connection: Connection, changes: Sequence[tuple[int, dict[str, Any]]], now: datetime) -> None:
    """Set the given columns of members by id: one executemany per set of columns."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for member_id, values in changes:
        params = {"_id": member_id} | {f"_{name}": value for name, value in values.items()}
        by_columns.setdefault(tuple(sorted(values)), []).append(params)
    for columns, rows in by_columns.items():
        statement = (
            update(MEMBERS)
            .where(MEMBERS.c.id == bindparam("_id"))
            .values({name: bindparam(f"_{name}") for name in columns} | {"updated_at": now})
        )
        connection.execute(statement, rows)


# ── Orders ───────────────────────────────────────────────────────────────────────────


class OrderInserter:
    """INSERT … ON CONFLICT (order_no) DO NOTHING for a chunk of orders, each a tuple in
    ORDER_COLUMNS order with ordered_at a naive datetime in UTC (cheaper to make per row
    than an aware one).

    `insert` returns how many rows went in and the order_nos that may have been in the
    table already (to re-read and compare): none when every row went in. On SQLite the
    statement is compiled once and run by the driver's executemany, whose row count tells
    whether anything conflicted, with ordered_at written as the text SQLAlchemy writes
    for SQLite (its per-row parameter handling would cost as much as the insert itself);
    on PostgreSQL, RETURNING names the rows that went in."""

    def __init__(self, connection: Connection):
        dialect = connection.dialect
        self._sqlite = dialect.name == "sqlite"
        statement = insert_ignoring_conflicts(ORDERS, dialect.name, ["order_no"])
        if self._sqlite:
            compiled = statement.values({name: bindparam(name) for name in ORDER_COLUMNS}).compile(dialect=dialect)
            assert list(compiled.positiontup or ()) == list(ORDER_COLUMNS), compiled.positiontup
            self._sql = str(compiled)
            processor = ORDERS.c.ordered_at.type.dialect_impl(dialect).bind_processor(dialect)
            sample = datetime(2026, 11, 1, 6, 30, 5, 120)
            expected = processor(sample.replace(tzinfo=timezone.utc)) if processor else None
            assert expected == _sqlite_text(sample), f"SQLAlchemy's SQLite datetime text changed: {expected!r}"
        else:
            self._statement = statement.returning(ORDERS.c.order_no)

    def insert(self, connection: Connection, rows: Sequence[tuple[Any, ...]]) -> tuple[int, list[str]]:
        if not rows:
            return 0, []
        if self._sqlite:
            params = [(no, member, store, cents, _sqlite_text(at)) for no, member, store, cents, at in rows]
            inserted = connection.exec_driver_sql(self._sql, params).rowcount
            return inserted, [] if inserted == len(rows) else [row[0] for row in rows]
        went_in = set(
            connection.execute(self._statement, [
                {"order_no": no, "member_id": member, "store_id": store, "amount_cents": cents,
                 "ordered_at": at.replace(tzinfo=timezone.utc)}
                for no, member, store, cents, at in rows
            ]).scalars()
        )
        return len(went_in), [row[0] for row in rows if row[0] not in went_in]


def _sqlite_text(moment: datetime) -> str:
    """A naive UTC datetime as SQLAlchemy stores it in SQLite: "2026-11-01 06:30:00.000000"."""
    return moment.isoformat(" ", "microseconds")


def orders_by_no(connection: Connection, order_nos: Collection[str]) -> dict[str, tuple[Any, ...]]:
    """order_no → (order_no, member_id, store_id, amount_cents, ordered_at) as stored."""
    found: dict[str, tuple[Any, ...]] = {}
    for keys in _slices(order_nos):
        for row in connection.execute(_ORDER_ROWS, {"keys": keys}):
            found[row[0]] = tuple(row)
    return found
