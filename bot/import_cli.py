"""`siyu import members FILE` and `siyu import orders FILE`: a CRM or till export (CSV or
XLSX) into our members and orders. See bot/imports/ for how rows are read and written.

bot/cli.py wires it in with `add_import_parser(commands, common)` in its parser and
`if args.command == "import": return run_import_command(settings, args)` in `main`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings
from bot.imports.columns import MappingError
from bot.imports.fields import FIELDS
from bot.imports.reader import ImportFileError
from bot.imports.report import SHOWN_REJECTS, ImportReport, report_json
from bot.imports.run import run_import
from bot.output import print_json, print_table


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


# ── Wiring into the `siyu` parser ────────────────────────────────────────────────────


def _column(text: str) -> tuple[str, str]:
    field, sep, header = text.partition("=")
    if not sep or not field.strip() or not header.strip():
        raise argparse.ArgumentTypeError(f"expected FIELD=HEADER, got {text!r}")
    return field.strip(), header.strip()


def add_import_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """`siyu import members|orders FILE [--column FIELD=HEADER]… [--dry-run] [--json]`.
    `commands` is the `siyu` parser's subparsers; `common` the parent with --config."""
    kinds = commands.add_parser("import", help="import members or orders from a CSV or XLSX file").add_subparsers(
        dest="import_kind", required=True, metavar="KIND"
    )
    for kind, what in (("members", "members, upserted by member_no"), ("orders", "orders, once per order_no")):
        sub = kinds.add_parser(kind, parents=[common], help=f"import {what}")
        sub.add_argument("file", type=Path, metavar="FILE", help="a .csv (UTF-8 or GB18030) or .xlsx file with a header row")
        sub.add_argument(
            "--column", action="append", type=_column, default=[], metavar="FIELD=HEADER",
            help=f"the file's header for one of our fields (repeatable); fields: {', '.join(FIELDS[kind])}",
        )
        sub.add_argument("--dry-run", action="store_true", help="check and report every row; write nothing to the database")
        sub.add_argument("--json", action="store_true", help="print the report as JSON, with every rejected row")


def run_import_command(settings: Settings, args: argparse.Namespace) -> int:
    """Dispatch parsed `siyu import …` arguments to import_command."""
    return import_command(settings, args.import_kind, args.file, dict(args.column), args.json, args.dry_run)
