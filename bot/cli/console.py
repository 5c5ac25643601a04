"""`siyu console hash-password`: the hash to put in [[console.users]] password_hash."""

from __future__ import annotations

import getpass
import sys

from bot.console.passwords import hash_password

MIN_LENGTH = 8


def hash_password_command() -> int:
    """Read the password (asked twice on a terminal, else one line of stdin) and print its hash."""
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("siyu: the two passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_LENGTH:
        print(f"siyu: a console password needs at least {MIN_LENGTH} characters", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0
