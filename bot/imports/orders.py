"""`siyu import orders`: till rows into orders. An order id already imported with the same
content is unchanged; with other content it is a rejected duplicate.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from bot.imports.batches import ImportRun, chunks, overlong
from bot.imports.report import ImportReport, Rejects
from bot.imports.rows import RowError, parse_cents, parse_utc_time
from storage import imports as store

# A parsed order: (line, values as read, order_no, member_no, store_id, cents, ordered_at naive UTC).
_OrderRow = tuple[int, list[str], str, str, "int | None", int, datetime]
MEMBER_CACHE = 500_000  # member_no → id pairs kept between chunks (a few dozen MB at most)


def import_orders(run: ImportRun, zone: ZoneInfo) -> None:
    connection, report, rejects = run.connection, run.report, run.rejects
    with run.transaction():
        stores = store.store_ids(connection)
    inserter = store.OrderInserter(connection)
    i_order, i_member, i_amount, i_at = (run.columns[name] for name in ("order_no", "member_no", "amount", "ordered_at"))
    i_store = run.columns.get("store")
    width = len(run.source.header)
    member_cache: dict[str, int] = {}

    def parsed() -> Iterator[_OrderRow]:
        # Runs a million times for a million rows: keep it plain.
        for line, values in run.source.rows:
            report.read += 1
            try:
                if len(values) > width and (problem := overlong(values, width)):
                    raise RowError(problem)
                order_no = values[i_order].strip()
                member_no = values[i_member].strip()
                if not order_no or not member_no:
                    raise RowError("missing order_no" if not order_no else "missing member_no")
                if len(order_no) > 64:
                    raise RowError("order_no longer than 64 characters")
                cents = parse_cents(values[i_amount])
                at = parse_utc_time(values[i_at], zone)
                store_id = None
                if i_store is not None and (code := values[i_store].strip()):
                    store_id = stores.get(code)
                    if store_id is None:
                        raise RowError(f"unknown store {code}")
            except RowError as error:
                rejects.add(line, str(error), values)
                continue
            yield line, values, order_no, member_no, store_id, cents, at

    def member_ids(chunk: list[_OrderRow]) -> dict[str, int]:
        """member_no → id for the chunk: one SELECT … IN for those not looked up before."""
        if len(member_cache) > MEMBER_CACHE:
            member_cache.clear()
        unknown = set(map(_member_no, chunk)).difference(member_cache)
        if unknown:
            member_cache.update(store.member_ids(connection, unknown))
        return member_cache

    def flush(chunk: list[_OrderRow]) -> None:
        with run.transaction():
            ids = member_ids(chunk)
            rows = [(row[2], ids[row[3]], row[4], row[5], row[6]) for row in chunk if row[3] in ids]
            if len(rows) < len(chunk):
                for row in chunk:
                    if row[3] not in ids:
                        rejects.add(row[0], f"unknown member {row[3]}", row[1])
                chunk = [row for row in chunk if row[3] in ids]
            inserted, suspects = inserter.insert(connection, rows)
            report.imported += inserted
            if suspects:
                _compare_orders(connection, chunk, rows, inserted, suspects, i_store is not None, report, rejects)
        rejects.flush()
        run.advance()

    chunks(run, parsed(), _order_no, flush)
    rejects.flush()


def _compare_orders(
    connection: Connection, chunk: list[_OrderRow], rows: list[tuple[Any, ...]], inserted: int, suspects: list[str],
    compare_store: bool, report: ImportReport, rejects: Rejects,
) -> None:
    """Orders that may have been there before: the same content is unchanged (a re-import),
    other content is a duplicate order id."""
    stored = store.orders_by_no(connection, suspects)
    doubtful = set(suspects)
    equal = 0
    for row, values in zip(chunk, rows):
        if row[2] not in doubtful:
            continue
        differs = _order_differences(values, stored.get(row[2]), compare_store)
        if differs:
            rejects.add(row[0], f"duplicate order id {row[2]} with different {', '.join(differs)}", row[1])
        else:
            equal += 1
    # The suspects that went in just now compare equal too.
    report.unchanged += equal - (inserted - (len(rows) - len(suspects)))


_member_no = itemgetter(3)
_order_no = itemgetter(2)


def _order_differences(ours: tuple[Any, ...], theirs: tuple[Any, ...] | None, compare_store: bool) -> list[str]:
    if theirs is None:  # gone between the insert and the read: someone deleted it
        return ["content (deleted meanwhile)"]
    _, member_id, store_id, cents, at = ours
    stored_at = theirs[4].astimezone(timezone.utc).replace(tzinfo=None)  # ours is naive UTC
    differs = []
    if theirs[1] != member_id:
        differs.append("member")
    if theirs[3] != cents:
        differs.append(f"amount ({theirs[3] / 100:.2f} imported before)")
    if stored_at != at:
        differs.append("ordered_at")
    if compare_store and theirs[2] != store_id:
        differs.append("store")
    return differs
