"""The `siyu` command line's grammar: every command and its flags.

Only the standard library and light modules of ours are imported here, so `siyu --help`
and argument errors answer at once; each command's module, and the application behind
it, is imported when that command runs (bot/cli/main.py).
"""

from __future__ import annotations

import argparse
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bot.imports.fields import FIELDS
from storage.statuses import OUTBOX_STATUSES

TASK_STATUSES = ("open", "overdue", "done", "skipped")


def _version() -> str:
    try:
        return version("siyu")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def siyu_parser() -> argparse.ArgumentParser:
    """Every command and its flags."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="FILE", help="configuration file (default: $SIYU_CONFIG or ./siyu.toml)"
    )
    listing = argparse.ArgumentParser(add_help=False)
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")

    parser = argparse.ArgumentParser(prog="siyu", description="Private-domain chat operations.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", parents=[common], help="seed a demo brand and serve it with the sandbox")
    demo.add_argument("--dir", type=Path, default=Path("siyu-demo"), help="where the demo lives (default ./siyu-demo)")
    demo.add_argument("--port", type=int, default=None, help="port to serve on (default 8080)")
    commands.add_parser("serve", parents=[common], help="run the webhook server, dispatcher and delivery")
    commands.add_parser("check", parents=[common], help="validate the configuration and templates")
    doctor = commands.add_parser("doctor", parents=[common, listing],
                                 help="check the connections: database, platform tokens and APIs, callback URLs, clock")
    doctor.add_argument("--public-url", metavar="URL",
                        help="the address the platforms call (https://your.domain): its callback paths are called "
                             "from here as the platforms do when the URL is saved")

    backup = commands.add_parser("backup", parents=[common],
                                 help="copy the SQLite database to FILE while the server runs")
    backup.add_argument("file", type=Path, metavar="FILE", help="where the copy goes (a new file)")
    backup.add_argument("--force", action="store_true", help="replace FILE if it exists")
    restore = commands.add_parser("restore", parents=[common],
                                  help="replace the SQLite database with a backup (every siyu process stopped)")
    restore.add_argument("file", type=Path, metavar="FILE", help="a file `siyu backup` wrote")

    db = commands.add_parser("db", help="database maintenance").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", parents=[common], help="apply database migrations")
    down = db.add_parser("downgrade", parents=[common],
                         help="undo migrations down to REVISION, before going back to an older siyu")
    down.add_argument("revision", metavar="REVISION",
                      help="the older release's newest migration, e.g. 0006 (its `siyu db upgrade` prints it)")

    member = commands.add_parser("member", help="look at members").add_subparsers(dest="member_command", required=True)
    show = member.add_parser("show", parents=[common, listing], help="one member: profile, tags, interactions")
    show.add_argument("id", help="our member id, or any platform id of the member (sandbox name, external_userid, openid, unionid)")

    layers = commands.add_parser("layers", help="member layers (RFM value, life cycle, super users)").add_subparsers(
        dest="layers_command", required=True
    )
    recompute = layers.add_parser("recompute", parents=[common, listing], help="recompute layers now")
    recompute.add_argument("--scheme", help="only this scheme (default: every scheme)")
    recompute.add_argument("--full", action="store_true", help="every member, not only those whose inputs changed")
    layers_show_parser = layers.add_parser("show", parents=[common, listing], help="the pyramid and week over week")
    layers_show_parser.add_argument("--scheme", default=None, help="the scheme to show (default: the first)")

    outcomes = commands.add_parser("outcomes", help="what the touches brought: conversions, lift vs holdout").add_subparsers(
        dest="outcomes_command", required=True
    )
    report = outcomes.add_parser("report", parents=[common, listing],
                                 help="reached vs held out per source, with the lift and its 95 % interval")
    report.add_argument("--from", dest="start", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                        help="first day (default: 30 days before --to)")
    report.add_argument("--to", dest="end", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                        help="last day (default: yesterday in the configured timezone)")
    report.add_argument("--by", choices=("entry", "occasion", "channel", "staff", "store", "layer", "source"),
                        default="entry", help="group by this (default: entry)")

    ltv = commands.add_parser("ltv", help="lifetime value: BG/NBD and Gamma-Gamma").add_subparsers(
        dest="ltv_command", required=True
    )
    fit = ltv.add_parser("fit", parents=[common, listing], help="fit on the orders before a day and score every member")
    fit.add_argument("--as-of", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                     help="fit on orders before this day (default: today in the configured timezone)")
    ltv_show = ltv.add_parser("show", parents=[common, listing], help="one member's P(alive) and expected value")
    ltv_show.add_argument("id", help="our member id, or any platform id of the member")

    _add_import_parser(commands, common)

    care = commands.add_parser("care", help="care: birthdays, anniversaries, festivals, win-back").add_subparsers(
        dest="care_command", required=True
    )
    care_run = care.add_parser("run", parents=[common, listing], help="run the daily care scan now")
    care_run.add_argument("--date", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                          help="the day to scan (default: today in the configured timezone)")
    care_run.add_argument("--dry-run", action="store_true", help="show what would be enqueued; write nothing")

    calendar = commands.add_parser("calendar", help="the content calendar").add_subparsers(
        dest="calendar_command", required=True
    )
    calendar_load = calendar.add_parser("load", parents=[common], help="make the calendar exactly this TOML file")
    calendar_load.add_argument("file", help="a calendar file ([[entries]])")
    calendar_export = calendar.add_parser("export", parents=[common], help="write the calendar as TOML")
    calendar_export.add_argument("file", nargs="?", help="where to write it (default: standard output)")
    calendar_preview = calendar.add_parser(
        "preview", parents=[common, listing], help="what fires, whom it reaches, what is held back"
    )
    calendar_preview.add_argument("--from", dest="start", type=date.fromisoformat,
                                  help="first day, YYYY-MM-DD (default: today)")
    calendar_preview.add_argument("--days", type=int, default=7, help="how many days (default 7)")
    calendar_preview.add_argument("--file", help="preview this calendar file instead of the loaded calendar")

    config = commands.add_parser("config", help="what operators edit, held in the database by version").add_subparsers(
        dest="config_command", required=True
    )
    config_load = config.add_parser("load", parents=[common],
                                    help="load a TOML file's persona, rules, texts, … into the database")
    config_load.add_argument("file", help="a siyu TOML file (the main one, or one `config export` wrote)")
    config_load.add_argument("--yes", action="store_true", help="overwrite edits made in the console without asking")
    config_export = config.add_parser("export", parents=[common], help="write what the database holds as TOML")
    config_export.add_argument("file", nargs="?", help="where to write it (default: standard output)")

    tasks = commands.add_parser("tasks", help="staff tasks").add_subparsers(dest="tasks_command", required=True)
    tasks_list = tasks.add_parser("list", parents=[common, listing],
                                  help="tasks, with completion and on-time rates per staff member and store")
    tasks_list.add_argument("--staff", metavar="USERID", help="only this staff member's tasks")
    tasks_list.add_argument("--status", choices=TASK_STATUSES, help="only tasks in this state")
    reassign = tasks.add_parser("reassign", parents=[common, listing],
                                help="a staff member who left: her open tasks and members to a colleague")
    reassign.add_argument("--from", dest="from_staff", required=True, metavar="USERID",
                          help="the staff member who left (she becomes inactive)")
    reassign.add_argument("--to", dest="to_staff", metavar="USERID",
                          help="who takes over (default: her store's manager)")

    console = commands.add_parser("console", help="the operator console at /admin/").add_subparsers(
        dest="console_command", required=True
    )
    console.add_parser("hash-password", help="print the hash of a password (read from stdin, or asked twice) "
                       "for password_hash in [[console.users]]")

    outbox = commands.add_parser("outbox", help="messages on their way out").add_subparsers(dest="outbox_command", required=True)
    outbox_list = outbox.add_parser("list", parents=[common, listing], help="recent outbox rows")
    outbox_list.add_argument("--status", choices=OUTBOX_STATUSES)
    outbox_list.add_argument("--limit", type=int, default=50)
    return parser


def _column(text: str) -> tuple[str, str]:
    field, sep, header = text.partition("=")
    if not sep or not field.strip() or not header.strip():
        raise argparse.ArgumentTypeError(f"expected FIELD=HEADER, got {text!r}")
    return field.strip(), header.strip()


def _add_import_parser(commands: Any, common: argparse.ArgumentParser) -> None:
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
