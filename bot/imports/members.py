"""`siyu import members`: CRM rows into members, inserted or updated by member_no. A
referrer may come later in the file: such rows wait and are written once it has been.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from bot.imports.batches import ImportRun, chunks, overlong
from bot.imports.fields import FIELDS
from bot.imports.report import ImportReport, Rejects
from bot.imports.rows import RowError, parse_birthday, parse_bool, parse_calendar, parse_date, text_value
from storage import imports as store


@dataclass(slots=True)
class _MemberRow:
    line: int
    values: list[str]
    member_no: str
    data: dict[str, Any]  # member columns this row sets
    referrer_no: str | None
    repeat: bool = False  # the member_no was on an earlier line of this file


def import_members(run: ImportRun, now: datetime) -> None:
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
                if len(values) > width and (problem := overlong(values, width)):
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

    chunks(run, parsed(), lambda row: row.member_no, flush)
    # Rows whose referrer was not known when their chunk was written: again, now that
    # the whole file has been; what still refers to nobody is rejected.
    final = False
    while deferred:
        waiting = sorted(deferred, key=lambda row: row.line)
        deferred.clear()
        deferred_nos.clear()
        # All in one chunk (they are in memory already): a ring of referrals resolves.
        chunks(run, iter(waiting), lambda row: row.member_no, lambda chunk: flush(chunk, final), len(waiting))
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
