"""Members exported as XLSX or CSV: formula-safe cells, phones masked unless asked for.

A cell a spreadsheet would read as a formula (it starts with = @ + - or a tab or
carriage return) gets a leading apostrophe, so a member who named herself
`=HYPERLINK(...)` is text in the operator's Excel, never a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from openpyxl import Workbook

from storage.members import masked_phone
from storage.segments import ExportRow

FORMULA_STARTS = ("=", "@", "+", "-", "\t", "\r")
FORMATS = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "csv": "text/csv; charset=utf-8"}


def safe_cell(value: Any) -> Any:
    """Text that would start a formula is kept as text; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def table(rows: Sequence[ExportRow], headers: Sequence[str], full_phones: bool,
          layer_label: Callable[[str, str], str], yes: str, no: str) -> list[list[Any]]:
    """The header row and one row per member, already formula-safe."""
    out: list[list[Any]] = [list(headers)]
    for r in rows:
        out.append([safe_cell(v) for v in (
            r.id, r.name or "", (r.phone if full_phones else masked_phone(r.phone)) or "", r.store or "",
            r.owner or "", "、".join(layer_label(s, layer) for s, layer in sorted(r.layers.items())),
            "、".join(r.tags), r.orders, round(r.spend_cents / 100, 2),
            r.last_interaction.strftime("%Y-%m-%d") if r.last_interaction else "",
            r.joined.isoformat() if r.joined else "", yes if r.opted_out else no,
        )])
    return out


def to_csv(cells: Sequence[Sequence[Any]]) -> bytes:
    """UTF-8 with a byte-order mark, so Excel opens the Chinese right."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(cells)
    return ("\ufeff" + buffer.getvalue()).encode()


def to_xlsx(cells: Sequence[Sequence[Any]]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("members")
    for row in cells:
        sheet.append(list(row))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


WRITERS: Mapping[str, Callable[[Sequence[Sequence[Any]]], bytes]] = {"xlsx": to_xlsx, "csv": to_csv}
