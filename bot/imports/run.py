"""The import: columns found, rows read and checked, written a chunk per transaction.

A row that cannot be imported is rejected with its line number and the reason and the
import goes on; only a file or mapping problem stops it, and that is found before
anything is written. Importing the same file again changes nothing: every row is then
counted as unchanged.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import Any, ContextManager
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from bot.imports.fields import FIELDS, describe_fields, unknown_fields
from bot.imports.reader import Source, open_source
from bot.imports.report import ImportReport, Rejects, rejects_path
from bot.imports.rows import (
    RowError,
    parse_birthday,
    parse_bool,
    parse_calendar,
    parse_cents,
    parse_date,
    parse_utc_time,
    text_value,
)
from storage import imports as store
from storage.engine import create_sync_engine

CHUNK_ROWS = 20_000  # rows per transaction


class MappingError(Exception):
    """The columns asked for do not fit the file (or name no field)."""


# ── Columns ──────────────────────────────────────────────────────────────────────────


def _folded(header: str) -> str:
    return header.replace("\ufeff", "").strip().casefold()


def resolve_columns(
    kind: str, header: Sequence[str], configured: Mapping[str, str], flags: Mapping[str, str]
) -> dict[str, int]:
    """field → index of its column in `header`. A header named by a flag (or by the
    configuration, for a required field) must be in the file; otherwise a field is found
    under its own name or one of its usual headers, or is not imported."""
    if unknown := unknown_fields(kind, flags):
        raise MappingError(f"unknown field {', '.join(map(repr, unknown))} in --column (fields: {describe_fields(kind)})")
    if unknown := unknown_fields(kind, configured):  # the settings check this already
        raise MappingError(f"unknown field {', '.join(map(repr, unknown))} in [import.{kind}.columns]")
    position: dict[str, int] = {}
    for index, name in enumerate(header):
        position.setdefault(_folded(name), index)
    found: dict[str, int] = {}
    missing: list[str] = []
    for name, spec in FIELDS[kind].items():
        if name in flags or name in configured:
            wanted = flags[name] if name in flags else configured[name]
            origin = f"--column {name}=…" if name in flags else f"[import.{kind}.columns] {name}"
            if _folded(wanted) in position:
                found[name] = position[_folded(wanted)]
            elif spec.required or name in flags:
                missing.append(f"{name} (column {wanted!r}, from {origin})")
            continue
        for candidate in (name, *spec.headers):
            if _folded(candidate) in position:
                found[name] = position[_folded(candidate)]
                break
        else:
            if spec.required:
                looked = " / ".join(repr(h) for h in (name, *spec.headers))
                missing.append(f"{name} (looked for {looked}; map it with --column {name}=HEADER)")
    if missing:
        columns = ", ".join(repr(h) for h in header)
        raise MappingError(f"missing column for {'; '.join(missing)}. The file's columns: {columns}")
    return found


# ── Running it ───────────────────────────────────────────────────────────────────────


@dataclass
class _Run:
    connection: Connection
    source: Source
    columns: dict[str, int]
    rejects: Rejects
    report: ImportReport
    transaction: Callable[[], ContextManager[Any]]
    advance: Callable[[], None]
    chunk_rows: int


def run_import(
    url: str, kind: str, path: Path, configured: Mapping[str, str], flags: Mapping[str, str], *,
    zone: ZoneInfo, dry_run: bool = False, keep_all_rejects: bool = False, chunk_rows: int | None = None,
    progress: bool | None = None,
) -> ImportReport:
    """Import `path` into the database at `url`. Raises ImportFileError or MappingError
    (before anything is written) when the file cannot be imported at all."""
    report = ImportReport(kind, path, dry_run)
    with open_source(path) as source:
        columns = resolve_columns(kind, source.header, configured, flags)
        report.columns = {name: source.header[index].strip() for name, index in columns.items()}
        report.encoding = source.encoding
        report.header = [name.strip() for name in source.header]
        target = rejects_path(path)
        target.unlink(missing_ok=True)  # an earlier run's rejects would mislead
        rejects = Rejects(report, source.header, keep_all_rejects, target)
        engine = create_sync_engine(url)
        # The chunks in flight are many small objects with no cycles among them, and the
        # collector's full passes over them cost a third of an import: off until done.
        collecting = gc.isenabled()
        gc.disable()
        try:
            with engine.connect() as connection, _progress(source, kind, progress) as advance:
                store.prepare_connection(connection)
                # A dry run is one transaction, rolled back: later rows still see earlier ones.
                outer = connection.begin() if dry_run else None
                run = _Run(
                    connection, source, columns, rejects, report,
                    (lambda: nullcontext()) if dry_run else connection.begin, advance, chunk_rows or CHUNK_ROWS,
                )
                try:
                    if kind == "members":
                        _import_members(run, datetime.now(timezone.utc))
                    else:
                        _import_orders(run, zone)
                finally:
                    if outer is not None:
                        outer.rollback()
                store.finish_connection(connection)
        finally:
            if collecting:
                gc.enable()
            rejects.close()
            engine.dispose()
    return report


def _overlong(values: list[str], width: int) -> str | None:
    """Why a row with more values than the header has columns is rejected (an unquoted
    comma in a value, most often); None when the extra values are empty."""
    if any(value.strip() for value in values[width:]):
        return f"{len(values)} values for {width} columns (a comma in a value not in quotes?)"
    return None


@contextmanager
def _progress(source: Source, kind: str, show: bool | None) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr while reading (by bytes for CSV, rows for XLSX); none
    when stderr is not a terminal."""
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    amount = DownloadColumn() if source.unit == "bytes" else MofNCompleteColumn()
    with Progress(
        TextColumn(f"importing {kind}"), BarColumn(), amount, TimeRemainingColumn(),
        console=Console(stderr=True), transient=True,
    ) as bar:
        task = bar.add_task(kind, total=source.total)
        yield lambda: bar.update(task, completed=source.position())


def _chunks(
    run: _Run, rows: Iterator[Any], key: Callable[[Any], str], flush: Callable[[list[Any]], None], size: int = 0
) -> None:
    """Feed `rows` to `flush` in chunks of `size` (default run.chunk_rows); a key seen
    again in a chunk starts a new one, so the later row is compared with what the earlier
    one wrote."""
    while chunk := list(islice(rows, size or run.chunk_rows)):
        keys = list(map(key, chunk))
        if len(set(keys)) == len(keys):
            flush(chunk)
            continue
        start, seen = 0, set()
        for index, name in enumerate(keys):
            if name in seen:
                flush(chunk[start:index])
                start, seen = index, set()
            seen.add(name)
        flush(chunk[start:])


# ── Orders ───────────────────────────────────────────────────────────────────────────


# A parsed order: (line, values as read, order_no, member_no, store_id, cents, ordered_at naive UTC).
_OrderRow = tuple[int, list[str], str, str, "int | None", int, datetime]
MEMBER_CACHE = 500_000  # member_no → id pairs kept between chunks (a few dozen MB at most)


def _import_orders(run: _Run, zone: ZoneInfo) -> None:
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
                if len(values) > width and (problem := _overlong(values, width)):
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

    _chunks(run, parsed(), _order_no, flush)
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


# ── Members ──────────────────────────────────────────────────────────────────────────


@dataclass(slots=True)
class _MemberRow:
    line: int
    values: list[str]
    member_no: str
    data: dict[str, Any]  # member columns this row sets
    referrer_no: str | None
    repeat: bool = False  # the member_no was on an earlier line of this file


def _import_members(run: _Run, now: datetime) -> None:
    connection, report, rejects, columns = run.connection, run.report, run.rejects, run.columns
    with run.transaction():
        stores = store.store_ids(connection)
        staff = store.staff_ids(connection)
    today = now.date()
    at = {name: columns.get(name) for name in FIELDS["members"]}

    def cell(values: list[str], name: str) -> str:
        index = at[name]
        return "" if index is None else values[index]

    def parse(line: int, values: list[str]) -> _MemberRow:
        member_no = text_value(cell(values, "member_no"), "member_no", 64)
        if member_no is None:
            raise RowError("missing member_no")
        data: dict[str, Any] = {}
        if (name := text_value(cell(values, "name"), "name", 128)) is not None:
            data["name"] = name
        if (phone := text_value(cell(values, "phone"), "phone", 32)) is not None:
            data["phone"] = phone
        if birthday_text := cell(values, "birthday").strip():
            birthday = parse_birthday(birthday_text, parse_calendar(cell(values, "calendar")), today)
            data |= {
                "birth_year": birthday.year, "birth_month": birthday.month, "birth_day": birthday.day,
                "birthday_calendar": birthday.calendar, "birthday_leap_month": birthday.leap_month,
                "birth_md": birthday.md,
            }
        if (since := parse_date(cell(values, "member_since"), "member_since")) is not None:
            if since > today:
                raise RowError(f"member_since {since} is in the future")
            data["member_since"] = since
        if (paid := parse_bool(cell(values, "paid_member"), "paid_member")) is not None:
            data["paid_member"] = paid
        if code := cell(values, "store").strip():
            if code not in stores:
                raise RowError(f"unknown store {code}")
            data["store_id"] = stores[code]
        if userid := cell(values, "owner").strip():
            if userid not in staff:
                raise RowError(f"unknown owner {userid} (no staff member with that userid)")
            data["owner_staff_id"] = staff[userid]
        referrer = cell(values, "referrer").strip() or None
        if referrer == member_no:
            raise RowError("referrer is the member herself")
        return _MemberRow(line, values, member_no, data, referrer)

    seen: set[str] = set()  # member_nos of this file so far (keys only, not rows)
    deferred: list[_MemberRow] = []  # rows whose referrer may come later in the file
    deferred_nos: set[str] = set()

    width = len(run.source.header)

    def parsed() -> Iterator[_MemberRow]:
        for line, values in run.source.rows:
            report.read += 1
            try:
                if len(values) > width and (problem := _overlong(values, width)):
                    raise RowError(problem)
                row = parse(line, values)
            except RowError as error:
                rejects.add(line, str(error), values)
                continue
            row.repeat = row.member_no in seen
            seen.add(row.member_no)
            yield row

    def flush(chunk: list[_MemberRow], final: bool = False) -> None:
        # A member whose earlier row waits for its referrer waits behind it.
        waits = [row for row in chunk if row.member_no in deferred_nos]
        if waits:
            deferred.extend(waits)
            chunk = [row for row in chunk if row.member_no not in deferred_nos]
        with run.transaction():
            later = _write_members(connection, chunk, final, now, report, rejects)
        for row in later:
            deferred.append(row)
            deferred_nos.add(row.member_no)
        rejects.flush()
        run.advance()

    _chunks(run, parsed(), lambda row: row.member_no, flush)
    # Rows whose referrer was not known when their chunk was written: again, now that
    # the whole file has been; what still refers to nobody is rejected.
    final = False
    while deferred:
        waiting = sorted(deferred, key=lambda row: row.line)
        deferred.clear()
        deferred_nos.clear()
        # All in one chunk (they are in memory already): a ring of referrals resolves.
        _chunks(run, iter(waiting), lambda row: row.member_no, lambda chunk: flush(chunk, final), len(waiting))
        final = len(deferred) == len(waiting)  # nothing resolved: the next round rejects them
    rejects.flush()


def _write_members(
    connection: Connection, chunk: list[_MemberRow], final: bool, now: datetime, report: ImportReport, rejects: Rejects
) -> list[_MemberRow]:
    """Upsert one chunk; returns the rows to try again later (referrer not known yet)."""
    keys = {row.member_no for row in chunk}
    existing = store.members_by_no(connection, keys)
    referrers = {row.referrer_no for row in chunk if row.referrer_no}
    known = store.member_ids(connection, referrers - keys) | {no: m["id"] for no, m in existing.items()}
    later: list[_MemberRow] = []
    ready = chunk
    while True:  # a row whose referrer is a row of this chunk that waits, waits too
        here = {row.member_no for row in ready}
        kept = []
        for row in ready:
            if row.referrer_no is None or row.referrer_no in known or row.referrer_no in here:
                kept.append(row)
            elif final:
                rejects.add(row.line, f"unknown referrer {row.referrer_no}", row.values)
            else:
                later.append(row)
        if len(kept) == len(ready):
            break
        ready = kept

    new = [row for row in ready if row.member_no not in existing]
    store.insert_members(
        connection,
        [
            {"member_no": row.member_no, **row.data}
            | ({"referrer_id": known[row.referrer_no]} if row.referrer_no in known else {})
            for row in new
        ],
        now,
    )
    new_ids = store.member_ids(connection, {row.member_no for row in new})
    report.imported += len(new)
    ids = known | new_ids
    store.update_members(
        connection,
        [
            (new_ids[row.member_no], {"referrer_id": ids[row.referrer_no]})
            for row in new
            if row.referrer_no and row.referrer_no not in known and row.member_no in new_ids
        ],
        now,
    )

    changes: list[tuple[int, dict[str, Any]]] = []
    for row in ready:
        member = existing.get(row.member_no)
        if member is None:
            continue
        data = row.data | ({"referrer_id": ids[row.referrer_no]} if row.referrer_no else {})
        differs = [name for name, value in data.items() if member[name] != value]
        if not differs:
            report.unchanged += 1
        elif row.repeat:
            rejects.add(
                row.line,
                f"duplicate member_no {row.member_no}: an earlier line gives different {', '.join(_shown(differs))}",
                row.values,
            )
        else:
            changes.append((member["id"], data))
            report.updated += 1
    store.update_members(connection, changes, now)
    return later


def _shown(columns: list[str]) -> list[str]:
    """Member columns as the file's fields."""
    names = {
        "birth_year": "birthday", "birth_month": "birthday", "birth_day": "birthday", "birth_md": "birthday",
        "birthday_leap_month": "birthday", "birthday_calendar": "birthday", "store_id": "store",
        "owner_staff_id": "owner", "referrer_id": "referrer",
    }
    return list(dict.fromkeys(names.get(name, name) for name in columns))
