"""`siyu`: parse the command line, then import and run the one command asked for.

Imports of the application stay inside the branches below: `siyu --help` and a
mistyped flag must answer without loading aiohttp, SQLAlchemy or the console.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from bot.cli.loading import load_or_report
from bot.cli.parser import siyu_parser


# What a shell reports for a command stopped by SIGPIPE (128 + 13).
CLOSED_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run_command(argv)
    except BrokenPipeError:
        # The reader went away (`siyu outbox list | head`): stop quietly, as Unix tools
        # do; stdout goes to /dev/null so the interpreter's last flush cannot complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return CLOSED_PIPE


def run_command(argv: Sequence[str] | None = None) -> int:
    args = siyu_parser().parse_args(argv)
    if args.command == "demo":
        from bot.cli.demo import demo

        return demo(args.dir, args.port)
    if args.command == "console":
        from bot.cli.console import hash_password_command

        return hash_password_command()
    from bot.settings.model import config_path

    path = config_path(args.config)
    if args.command == "check":
        from bot.cli.check import check

        return check(path)
    if args.command == "doctor":
        from bot.cli.doctor import doctor

        return doctor(path, args.public_url, args.json)
    settings = load_or_report(path)
    if settings is None:
        return 1
    if args.command == "serve":
        from bot.cli.serve import run_server

        return run_server(settings)
    if args.command in ("backup", "restore"):
        from bot.cli import backup

        if args.command == "backup":
            return backup.backup(settings, args.file, args.force)
        return backup.restore(settings, args.file)
    from storage.migrate import head_revision, pending_revisions, upgrade

    if args.command == "db":
        if args.db_command == "downgrade":
            from storage.migrate import applied_heads, downgrade

            downgrade(settings.storage.url, args.revision)
            now = ", ".join(sorted(applied_heads(settings.storage.url))) or "base (no tables of ours)"
            print(f"database is at migration {now} ({settings.storage.url.split(':', 1)[0]})")
            return 0
        upgrade(settings.storage.url)
        print(f"database is up to date ({settings.storage.url.split(':', 1)[0]}); its newest migration: {head_revision()}")
        return 0
    from asyncio import run

    if pending := pending_revisions(settings.storage.url):
        print(f"siyu: the database is not up to date ({len(pending)} migration(s) pending): "
              f"run `siyu db upgrade --config {path}` first", file=sys.stderr)
        return 1
    if args.command == "tasks":
        from bot.cli import tasks

        if args.tasks_command == "reassign":
            return run(tasks.tasks_reassign(settings, args.from_staff, args.to_staff, args.json))
        return run(tasks.tasks_list(settings, args.staff, args.status, args.json))
    if args.command == "care":
        from bot.cli.care import care_run

        return care_run(settings, args.date, args.dry_run, args.json)
    if args.command == "calendar":
        from bot.cli import calendar

        if args.calendar_command == "load":
            return calendar.load(settings, args.file)
        if args.calendar_command == "export":
            return calendar.export(settings, args.file)
        return calendar.preview(settings, args.start, args.days, args.json, args.file)
    if args.command == "config":
        from bot.cli import config

        if args.config_command == "load":
            return config.load(settings, args.file, args.yes)
        return config.export(settings, args.file)
    if args.command == "import":
        from bot.cli.importing import import_command

        return import_command(settings, args.import_kind, args.file, dict(args.column), args.json, args.dry_run)
    if args.command == "outcomes":
        from bot.cli import outcomes

        return run(outcomes.report(settings, args.by, args.start, args.end, args.json))
    if args.command == "ltv":
        from bot.cli import ltv

        if args.ltv_command == "fit":
            return run(ltv.fit(settings, args.as_of, args.json))
        return run(ltv.show(settings, args.id, args.json))
    if args.command == "layers":
        from bot.cli import layers

        if args.layers_command == "show":
            return layers.show(settings, args.scheme, args.json)
        return run(layers.layers_recompute(settings, args.scheme, args.full, args.json))
    from bot.cli import inspect

    if args.command == "member":
        return run(inspect.member_show(settings, args.id, args.json))
    return run(inspect.outbox_list(settings, args.status, args.limit, args.json))
