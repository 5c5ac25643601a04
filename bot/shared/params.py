"""Whole numbers from a URL or a form, read without surprises.

`str.isdigit()` is true for "²" and "٣", and `int("²")` then raises; an id past 64 bits
overflows SQLite's integer and PostgreSQL's bigint. Each of those was a 500. Here only
ASCII digits within a bound are a number; anything else is None, for the caller to
answer 404 or to ignore.
"""

from __future__ import annotations

MAX_ID = 2**63 - 1  # the largest id a database column holds


def whole_number(text: str | None, maximum: int = MAX_ID) -> int | None:
    if not text or len(text) > 19 or not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= maximum else None


def path_id(text: str) -> int:
    """An id from the path; an impossible one is -1, which finds no row."""
    value = whole_number(text)
    return -1 if value is None else value
