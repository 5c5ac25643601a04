"""What the members and the orders imports share while running: the open import, the
check for rows longer than the header, and the rows fed to the database a chunk at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, ContextManager

from sqlalchemy import Connection

from bot.imports.reader import Source
from bot.imports.report import ImportReport, Rejects


@dataclass
class ImportRun:
    """One import under way: where it writes, what it reads and where its results go.
    `transaction` opens one chunk's transaction (none in a dry run, which has its own)."""

    connection: Connection
    source: Source
    columns: dict[str, int]
    rejects: Rejects
    report: ImportReport
    transaction: Callable[[], ContextManager[Any]]
    advance: Callable[[], None]
    chunk_rows: int


def overlong(values: list[str], width: int) -> str | None:
    """Why a row with more values than the header has columns is rejected (an unquoted
    comma in a value, most often); None when the extra values are empty."""
    if any(value.strip() for value in values[width:]):
        return f"{len(values)} values for {width} columns (a comma in a value not in quotes?)"
    return None


def chunks(
    run: ImportRun, rows: Iterator[Any], key: Callable[[Any], str], flush: Callable[[list[Any]], None], size: int = 0
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
