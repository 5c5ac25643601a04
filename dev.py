#!/usr/bin/env python3
"""Set up siyu in a local virtual environment (.venv) and run the demo or the tests.

    python3 dev.py demo [siyu demo options]    # e.g. --port 8081
    python3 dev.py test [pytest options]       # e.g. -k sandbox

Needs only Python 3.11+ and network access to the package index. The environment is
created on first use and refreshed whenever pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".siyu-installed"


def venv_python() -> Path:
    scripts = "Scripts" if sys.platform == "win32" else "bin"
    return VENV / scripts / ("python.exe" if sys.platform == "win32" else "python")


def ensure_environment(extras: str) -> Path:
    """Create or refresh .venv so it holds siyu (editable) with `extras`."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    python = venv_python()
    if not python.exists():
        print("dev.py: creating .venv (first run: a minute or so)", flush=True)
        venv.create(VENV, with_pip=True, clear=True)
    if not STAMP.exists() or STAMP.read_text() != wanted:
        print(f"dev.py: installing siyu[{extras}] into .venv", flush=True)
        target = f"{ROOT}[{extras}]" if extras else str(ROOT)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", target],
            check=True,
        )
        STAMP.write_text(wanted)
    return python


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):
        print("siyu needs Python 3.11 or newer: run this file with python3.11", file=sys.stderr)
        return 2
    if not argv or argv[0] not in ("demo", "test"):
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    python = ensure_environment("test" if command == "test" else "")
    if command == "test":
        args = [str(python), "-m", "pytest", *rest]
    else:
        args = [str(python), "-m", "bot", "demo", *rest]
    try:
        return subprocess.run(args, cwd=ROOT).returncode
    except KeyboardInterrupt:  # the child got the Ctrl-C too and has shut down
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
