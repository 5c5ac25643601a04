"""The `siyu` command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from bot import calendar_cli, care_cli, console_cli, import_cli, inspect_cli, layers_cli, tasks_cli
from bot.check import problems_in, summary
from bot.config import ConfigError, Settings, config_path, load_settings
from bot.demo import DEMO_PASSWORD, prepare_demo, write_config
from bot.serve import configure_logging, run_server
from storage.migrate import pending_revisions, upgrade
from storage.outbox import STATUSES


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="FILE", help="configuration file (default: $SIYU_CONFIG or ./siyu.toml)"
    )
    listing = argparse.ArgumentParser(add_help=False)
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")

    parser = argparse.ArgumentParser(prog="siyu", description="Private-domain chat operations.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", parents=[common], help="seed a demo brand and serve it with the sandbox")
    demo.add_argument("--dir", type=Path, default=Path("siyu-demo"), help="where the demo lives (default ./siyu-demo)")
    demo.add_argument("--port", type=int, default=None, help="port to serve on (default 8080)")
    commands.add_parser("serve", parents=[common], help="run the webhook server, dispatcher and delivery")
    commands.add_parser("check", parents=[common], help="validate the configuration and templates")

    db = commands.add_parser("db", help="database maintenance").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", parents=[common], help="apply database migrations")

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

    import_cli.add_import_parser(commands, common)

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

    tasks = commands.add_parser("tasks", help="staff tasks").add_subparsers(dest="tasks_command", required=True)
    tasks_list = tasks.add_parser("list", parents=[common, listing],
                                  help="tasks, with completion and on-time rates per staff member and store")
    tasks_list.add_argument("--staff", metavar="USERID", help="only this staff member's tasks")
    tasks_list.add_argument("--status", choices=tasks_cli.STATUSES, help="only tasks in this state")
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
    outbox_list.add_argument("--status", choices=STATUSES)
    outbox_list.add_argument("--limit", type=int, default=50)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        return _demo(args)
    if args.command == "console":
        return console_cli.hash_password_command()
    path = config_path(args.config)
    if args.command == "check":
        return _check(path)
    settings = _load(path)
    if settings is None:
        return 1
    if args.command == "serve":
        return run_server(settings)
    if args.command == "db":
        upgrade(settings.storage.url)
        print(f"database is up to date ({settings.storage.url.split(':', 1)[0]})")
        return 0
    if pending := pending_revisions(settings.storage.url):
        print(f"siyu: the database is not up to date ({len(pending)} migration(s) pending): "
              f"run `siyu db upgrade --config {path}` first", file=sys.stderr)
        return 1
    if args.command == "tasks" and args.tasks_command == "reassign":
        return asyncio.run(tasks_cli.tasks_reassign(settings, args.from_staff, args.to_staff, args.json))
    if args.command == "tasks":
        return asyncio.run(tasks_cli.tasks_list(settings, args.staff, args.status, args.json))
    if args.command == "care":
        return care_cli.care_run(settings, args.date, args.dry_run, args.json)
    if args.command == "calendar" and args.calendar_command == "load":
        return calendar_cli.load(settings, args.file)
    if args.command == "calendar" and args.calendar_command == "export":
        return calendar_cli.export(settings, args.file)
    if args.command == "calendar":
        return calendar_cli.preview(settings, args.start, args.days, args.json, args.file)
    if args.command == "import":
        return import_cli.run_import_command(settings, args)
    if args.command == "layers" and args.layers_command == "show":
        return layers_cli.show(settings, args.scheme, args.json)
    if args.command == "layers":
        return asyncio.run(layers_cli.layers_recompute(settings, args.scheme, args.full, args.json))
    if args.command == "member":
        return asyncio.run(inspect_cli.member_show(settings, args.id, args.json))
    return asyncio.run(inspect_cli.outbox_list(settings, args.status, args.limit, args.json))


def _load(path: Path) -> Settings | None:
    """The settings, with logging set up; None (problems printed) when they do not load."""
    try:
        settings = load_settings(path)
    except ConfigError as error:
        _print_problems(error.problems)
        return None
    configure_logging(settings.log.level)
    return settings


def _print_problems(problems: list[str]) -> None:
    for problem in problems:
        print(problem, file=sys.stderr)


def _check(path: Path) -> int:
    settings, problems = problems_in(path)
    if problems or settings is None:
        _print_problems(problems)
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return 1
    print(summary(path, settings))
    return 0


def _demo(args: argparse.Namespace) -> int:
    path = write_config(args.dir, args.port or 8080)
    settings = _load(path)
    if settings is None:
        return 1
    upgrade(settings.storage.url)

    result = asyncio.run(prepare_demo(settings))
    what = "seeded" if result.created else "reusing"
    print(f"siyu demo: {what} {result.members} members and {result.orders} orders in {args.dir}/", flush=True)

    def announce(base: str) -> None:
        print(f"  chat as a member:  {base}/sandbox", flush=True)
        if settings.console.users:
            print(f"  operator console:  {base}/admin/  (log in as ops, or chenjing / liuyang for staff;"
                  f" password {DEMO_PASSWORD})", flush=True)
        print(f"  health:            {base}/healthz", flush=True)
        print(f"  other commands:    siyu member show {result.example_member} --config {path}", flush=True)
        print("  Ctrl-C stops the demo; run it again to pick up where you left off.", flush=True)

    return run_server(settings, port=args.port, announce=announce)
