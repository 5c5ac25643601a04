"""What `siyu check` warns about without refusing the file: a configuration others on
the machine can read while it holds secrets, and console logins that share a name with
a staff member's userid (two identities that people would mistake for one)."""

from __future__ import annotations

import asyncio
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from bot.cli.sessions import open_sessions
from bot.settings.model import Settings
from storage.engine import sqlite_file
from storage.models import Staff

# Keys whose values are secrets wherever they appear (an "env:NAME" value is not in the file).
SECRET_KEYS = frozenset({"secret", "token", "password_hash", "encoding_aes_key", "previous_encoding_aes_key",
                         "api_token"})


def security_warnings(path: Path, settings: Settings) -> list[str]:
    return [*_readable_secrets(path), *_login_collisions(settings)]


def secrets_in(raw: Any, where: str = "") -> list[str]:
    """The dotted keys of `raw` (parsed TOML) that hold a secret written in the file."""
    found: list[str] = []
    if isinstance(raw, dict):
        for key, value in raw.items():
            place = f"{where}.{key}" if where else str(key)
            if key in SECRET_KEYS and isinstance(value, str) and value and not value.startswith("env:"):
                found.append(place)
            else:
                found.extend(secrets_in(value, place))
    elif isinstance(raw, list):
        for n, item in enumerate(raw):
            found.extend(secrets_in(item, f"{where}[{n}]"))
    return found


def _readable_secrets(path: Path) -> list[str]:
    if os.name != "posix":
        return []
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & 0o077:
        return []
    held = secrets_in(tomllib.loads(path.read_text(encoding="utf-8")))
    if not held:
        return []
    return [f"{path}: warning: other users on this machine may read it (mode {mode:04o}) and it holds secrets "
            f"({', '.join(held[:5])}{', …' if len(held) > 5 else ''}): run `chmod 600 {path}`, or give them as "
            '"env:NAME"']


def _login_collisions(settings: Settings) -> list[str]:
    """A console login named like a staff userid, other than that staff member's own login."""
    userids = asyncio.run(_staff_userids(settings))
    warnings = []
    for n, user in enumerate(settings.console.users):
        if user.login in userids and not (user.role == "staff" and user.staff == user.login):
            acts_as = "an operator" if user.role == "operator" else f"staff member {user.staff!r}"
            warnings.append(
                f"console.users[{n}]: warning: login {user.login!r} ({acts_as}) is also a staff member's userid: "
                "console logins and staff are separate identities, so choose another login name"
            )
    return warnings


async def _staff_userids(settings: Settings) -> set[str]:
    """Staff userids in the database; none when it cannot be read yet (not created or
    migrated): the check is about the file, and the database may come later."""
    database = sqlite_file(settings.storage.url)
    if database is not None and not database.exists():
        return set()  # opening it would create it
    try:
        async with open_sessions(settings) as sessions, sessions() as session:
            return set((await session.execute(select(Staff.userid))).scalars())
    except (SQLAlchemyError, OSError):
        return set()
