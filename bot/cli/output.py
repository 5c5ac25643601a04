"""How commands print: a rich table for people, JSON for scripts.

What members write (names, remarks, messages) reaches the terminal here, so every cell
is shown as text, never as markup (`[red]` stays `[red]`), and control characters
(escape sequences that retitle the window, recolour or move the cursor; C1 controls;
bidirectional overrides that reorder a line) are shown as `\\x1b`-style escapes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides,
# embeddings and isolates.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """`text` with every character a terminal would act on written as an escape."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def print_json(value: Any) -> None:
    # json escapes C0 controls itself; C1 controls and bidi overrides pass through it.
    text = json.dumps(value, ensure_ascii=False, indent=2, default=str)
    print(_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=Text(terminal_safe(title)))
    for column in columns:
        table.add_column(Text(terminal_safe(column)))
    for row in rows:
        table.add_row(*(Text("" if value is None else terminal_safe(str(value))) for value in row))
    Console().print(table)
