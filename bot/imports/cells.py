"""Cells siyu writes into a CSV or XLSX file, made safe to open in a spreadsheet.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel,
WPS and LibreOffice as a formula (`=HYPERLINK(…)`, `@SUM(…)`, DDE): text a member or an
export wrote would run on the operator's machine. Such a cell gets a leading `'`, which
the spreadsheet shows as text and hides. A plain number (`-5`, `+86`) stays as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def safe_cell(value: object) -> object:
    """The value to write: a formula-looking string quoted, anything else unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_row(values: Iterable[object]) -> list[object]:
    return [safe_cell(value) for value in values]
