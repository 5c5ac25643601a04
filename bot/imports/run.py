"""The import: columns found, rows read and checked, written a chunk per transaction
(members.py and orders.py hold each kind's rows; batches.py what they share).

A row that cannot be imported is rejected with its line number and the reason and the
import goes on; only a file or mapping problem stops it, and that is found before
anything is written. Importing the same file again changes nothing: every row is then
counted as unchanged.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.imports.batches import ImportRun
from bot.imports.columns import resolve_columns
from bot.imports.members import import_members
from bot.imports.orders import import_orders
from bot.imports.reader import Source, open_source
from bot.imports.report import ImportReport, Rejects, rejects_path
from storage import imports as store
from storage.engine import create_sync_engine

CHUNK_ROWS = 20_000  # rows per transaction


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
                run = ImportRun(
                    connection, source, columns, rejects, report,
                    (lambda: nullcontext()) if dry_run else connection.begin, advance, chunk_rows or CHUNK_ROWS,
                )
                try:
                    if kind == "members":
                        import_members(run, datetime.now(timezone.utc))
                    else:
                        import_orders(run, zone)
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
