"""The configuration for a command: loaded, with logging set up, or every problem printed.

Light at import (the heavy modules load inside the function), as the parser is."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.settings.model import Settings


def load_or_report(path: Path) -> Settings | None:
    """The settings, with logging set up; None (problems printed) when they do not load."""
    from bot.cli.logs import configure_logging
    from bot.settings.model import ConfigError, load_settings

    try:
        settings = load_settings(path)
    except ConfigError as error:
        print_problems(error.problems)
        return None
    configure_logging(settings)
    return settings


def print_problems(problems: list[str]) -> None:
    for problem in problems:
        print(problem, file=sys.stderr)
