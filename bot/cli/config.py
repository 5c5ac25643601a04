"""`siyu config export [FILE]` and `siyu config load FILE [--yes]`.

What operators edit lives in the database by version; a TOML file bootstraps it and keeps
it under version control. Export writes what the database holds; load checks the file as
`siyu check` does and, where the console changed a document since the last load, asks
before overwriting it.
"""

from __future__ import annotations

import asyncio
import sys
import tomllib
from pathlib import Path

from bot.cli.sessions import open_sessions
from bot.settings.checks import settings_problems
from bot.settings.documents import DOCUMENTS, apply_documents, documents_of, documents_toml
from bot.settings.model import ConfigError, Settings, load_settings
from bot.shared.config_store import LoadPlan, apply_load, held_documents, plan_load


def export(settings: Settings, file: str | None) -> int:
    async def run() -> dict[str, object]:
        async with open_sessions(settings) as sessions:
            return await held_documents(sessions, settings)

    text = documents_toml(asyncio.run(run()))
    if file is None:
        sys.stdout.write(text)
        return 0
    Path(file).write_text(text, encoding="utf-8")
    print(f"wrote the configuration the database holds to {file}")
    return 0


def load(settings: Settings, file: str, yes: bool) -> int:
    path = Path(file)
    try:
        from_file = load_settings(path)  # every key checked as in the main file
        sections = set(tomllib.loads(path.read_text(encoding="utf-8")))
    except ConfigError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return 1
    bodies = {name: body for name, body in documents_of(from_file).items()
              if name in sections or (name == "templates" and "templates" in sections)}
    if not bodies:
        print(f"siyu: {file} holds none of: {', '.join(DOCUMENTS)}", file=sys.stderr)
        return 1
    problems = [f"{file}: {p}" for p in settings_problems(apply_documents(settings, bodies))]
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"{len(problems)} problem(s) found: nothing loaded", file=sys.stderr)
        return 1

    async def plan() -> LoadPlan:
        async with open_sessions(settings) as sessions:
            return await plan_load(sessions, bodies, at_start=False)

    found = asyncio.run(plan())
    if not found.write:
        print(f"{file}: the database already holds this configuration")
        return 0
    if found.conflicts and not yes:
        names = ", ".join(f"{n} ({DOCUMENTS[n]})" for n in found.conflicts)
        print(f"edited in the console since the last load: {names}", file=sys.stderr)
        if not sys.stdin.isatty() or input("overwrite those edits with the file? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing loaded (run with --yes to overwrite)", file=sys.stderr)
            return 1

    async def write() -> list[str]:
        async with open_sessions(settings) as sessions:
            return await apply_load(sessions, found, str(path.name), overwrite=True)

    changed = asyncio.run(write())
    print(f"loaded {file}: {', '.join(changed) or 'nothing changed'} (running servers apply it within seconds)")
    return 0
