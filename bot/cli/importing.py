"""`siyu import members FILE` and `siyu import orders FILE`: a CRM or till export (CSV or
XLSX) into our members and orders. See bot/imports/ for how rows are read and written.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.exc import SQLAlchemyError

from bot.cli.output import print_json, print_table
from bot.imports.columns import MappingError
from bot.imports.reader import ImportFileError
from bot.imports.report import SHOWN_REJECTS, ImportReport, report_json
from bot.imports.run import run_import
from bot.settings.model import Settings


def import_command(
    settings: Settings,
    kind: Literal["members", "orders"],
    path: Path,
    columns: dict[str, str],
    as_json: bool,
    dry_run: bool,
) -> int:
    """Import `path`; print the summary and the rejected rows. 0 when the import ran
    (rejected rows included), 1 when the file or the column mapping does not allow it."""
    configured = (settings.imports.members if kind == "members" else settings.imports.orders).columns
    try:
        report = run_import(
            settings.storage.url, kind, path, configured, columns,
            zone=settings.zone, dry_run=dry_run, keep_all_rejects=as_json,
        )
    except (ImportFileError, MappingError) as error:
        print(f"siyu: {path}: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # e.g. the rejects file cannot be written
        print(f"siyu: {error}", file=sys.stderr)
        return 1
    except SQLAlchemyError as error:
        print(f"siyu: {path}: the import stopped on a database error (earlier chunks are kept): {error}",
              file=sys.stderr)
        return 1
    if as_json:
        print_json(report_json(report))
    else:
        _print_report(report)
    return 0


def _print_report(report: ImportReport) -> None:
    counts: list[tuple[str, Any]] = [("read", report.read), ("imported (new)", report.imported)]
    if report.kind == "members":
        counts.append(("updated", report.updated))
    counts += [("unchanged", report.unchanged), ("rejected", report.rejected)]
    title = f"import {report.kind}: {report.file.name}" + (" — dry run, nothing written" if report.dry_run else "")
    print_table(title, ("rows", "count"), counts)
    if report.rejects:
        shown = report.rejects[:SHOWN_REJECTS]
        which = f"the first {len(shown)} of {report.rejected}" if report.rejected > len(shown) else "all"
        print_table(
            f"rejected rows ({which})",
            ("line", "reason", "row"),
            [(r.line, r.reason, ", ".join(f"{k}={v}" for k, v in report.row(r).items() if v)) for r in shown],
        )
        print(f"all {report.rejected} rejected rows, with their reasons: {report.rejects_file}")
