"""`siyu check`: everything that can be wrong with a configuration, found before serving."""

from __future__ import annotations

import sys
from pathlib import Path

from bot.cli.calendar import calendar_file_problems
from bot.cli.check_security import security_warnings
from bot.settings.checks import settings_problems
from bot.settings.model import ConfigError, Settings, load_settings


def check(path: Path) -> int:
    """`siyu check`: 0 and a one-line summary, or 1 and every problem on stderr."""
    settings, problems = problems_in(path)
    if problems or settings is None:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return 1
    for warning in security_warnings(path, settings):
        print(warning, file=sys.stderr)
    print(summary(path, settings))
    return 0


def problems_in(path: Path) -> tuple[Settings | None, list[str]]:
    """The settings (when they load) and every problem found, as `file: where: what`."""
    try:
        settings = load_settings(path)
    except ConfigError as error:
        return None, error.problems
    problems = [f"{path}: {p}" for p in settings_problems(settings)]
    if calendar_file := settings.calendar.file:  # the calendar operators keep in a file
        problems.extend(calendar_file_problems(settings, path.parent / calendar_file))
    return settings, sorted(set(problems), key=problems.index)


def summary(path: Path, settings: Settings) -> str:
    platforms = [name for name in ("wecom", "oa") if getattr(settings.platforms, name) is not None]
    if settings.platforms.sandbox.enabled:
        platforms.append("sandbox")
    backend = settings.storage.url.split(":", 1)[0]
    return (
        f"{path}: OK — persona {settings.persona.name}, platforms: {', '.join(platforms) or 'none'}, "
        f"{len(settings.tags.rules)} tag rules, {len(settings.replies.faq)} FAQ entries, "
        f"database {backend}, time zone {settings.timezone}"
    )
