"""The file to import, streamed: its header and then each row with the line number the
file itself counts (the header is line 1; a CSV value spanning lines counts them all).

CSV is read as UTF-8 (a byte-order mark or not) or, when the file is not valid UTF-8, as
GB18030 (what Chinese Excel saves). Its delimiter is the comma, unless the header line
has none and has tabs or semicolons. XLSX is read from its first sheet with openpyxl in
read-only mode; its row numbers are the line numbers. Rows are never all held at once.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any

CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
XLSX_SUFFIXES = {".xlsx", ".xlsm"}
_SCAN_BYTES = 1 << 20


class ImportFileError(Exception):
    """The file cannot be imported at all (unreadable, no header, wrong format…)."""


@dataclass
class Source:
    header: list[str]
    # (line number, values): blank rows left out, short rows padded to the header's width
    rows: Iterator[tuple[int, list[str]]]
    position: Callable[[], int]  # how far reading has got, in `unit`
    total: int | None
    unit: str  # "bytes" | "rows"
    encoding: str | None = None


@contextmanager
def open_source(path: Path) -> Iterator[Source]:
    suffix = path.suffix.lower()
    if not path.exists():
        raise ImportFileError("no such file")
    if path.is_dir():
        raise ImportFileError("is a folder, not a file")
    if suffix in XLSX_SUFFIXES:
        with _xlsx(path) as source:
            yield source
    elif suffix == ".xls":
        raise ImportFileError("old Excel .xls files are not read: save the sheet as .xlsx or CSV")
    elif suffix in CSV_SUFFIXES or not suffix:
        with _csv(path) as source:
            yield source
    else:
        raise ImportFileError(f"unknown file type {suffix!r}: give a .csv or .xlsx file")


def _encoding(path: Path) -> str:
    """utf-8-sig when the whole file decodes as UTF-8, else gb18030 when that decodes it."""
    for encoding in ("utf-8-sig", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as file:
                while chunk := file.read(_SCAN_BYTES):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        except OSError as error:
            raise ImportFileError(f"cannot read: {error.strerror or error}") from None
        return encoding
    raise ImportFileError("neither UTF-8 nor GB18030 text: save the file as CSV UTF-8")


def _delimiter(first_line: str) -> str:
    if "," in first_line:
        return ","
    for candidate in ("\t", ";"):
        if candidate in first_line:
            return candidate
    return ","


@contextmanager
def _csv(path: Path) -> Iterator[Source]:
    encoding = _encoding(path)
    try:
        binary = path.open("rb")
    except OSError as error:
        raise ImportFileError(f"cannot read: {error.strerror or error}") from None
    with binary:
        text: IO[str] = io.TextIOWrapper(binary, encoding=encoding, newline="")
        first = text.readline()
        if not first:
            raise ImportFileError("empty file: the first line must name the columns")
        reader = csv.reader(itertools.chain([first], text), delimiter=_delimiter(first))
        try:
            header = next(reader)
        except StopIteration:
            raise ImportFileError("empty file: the first line must name the columns") from None
        if not any(cell.strip() for cell in header):
            raise ImportFileError("no header: the first line must name the columns")

        width = len(header)

        def rows() -> Iterator[tuple[int, list[str]]]:
            before = reader.line_num
            try:
                for values in reader:
                    line = before + 1
                    before = reader.line_num
                    if any(values):
                        if len(values) < width:
                            values += [""] * (width - len(values))
                        yield line, values
            except csv.Error as error:
                raise ImportFileError(f"line {before + 1}: not valid CSV: {error}") from None

        size = path.stat().st_size
        yield Source(header, rows(), binary.tell, size, "bytes", "utf-8" if encoding == "utf-8-sig" else encoding)


def cell_text(value: Any) -> str:
    """An XLSX cell as the text a CSV export would hold."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.time() == time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


@contextmanager
def _xlsx(path: Path) -> Iterator[Source]:
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - a dependency
        raise ImportFileError("reading .xlsx needs openpyxl (pip install openpyxl)") from None
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # zipfile, XML and openpyxl's own errors alike
        raise ImportFileError(f"not a readable .xlsx file: {error}") from None
    try:
        if not workbook.worksheets:
            raise ImportFileError("the workbook has no sheet")
        sheet = workbook.worksheets[0]
        _read_through(sheet)
        numbered = enumerate(sheet.iter_rows(min_row=1, values_only=True), start=1)
        header: list[str] | None = None
        for _, values in numbered:
            texts = [cell_text(v) for v in values]
            if any(t.strip() for t in texts):
                header = texts
                break
        if header is None:
            raise ImportFileError("empty sheet: the first row must name the columns")
        done = 0

        width = len(header)

        def rows() -> Iterator[tuple[int, list[str]]]:
            nonlocal done
            try:
                for line, values in numbered:
                    done = line
                    if any(v is not None and v != "" for v in values):
                        texts = [cell_text(v) for v in values]
                        if len(texts) < width:
                            texts += [""] * (width - len(texts))
                        yield line, texts
            except ImportFileError:
                raise
            except Exception as error:  # openpyxl parses the sheet lazily: a broken row surfaces here
                raise ImportFileError(f"row {done + 1}: not a readable .xlsx row: {error}") from None

        yield Source(header, rows(), lambda: done, sheet.max_row, "rows")
    finally:
        workbook.close()


def _read_through(sheet: Any) -> None:
    """Parse the whole sheet once before anything is stored. openpyxl parses lazily and an
    import commits a chunk of rows at a time, so a file broken at row 30,000 would
    otherwise keep the rows before it; a second read costs far less than half an import."""
    line = 0
    try:
        for line, _ in enumerate(sheet.iter_rows(values_only=True), start=1):
            pass
    except Exception as error:  # the same errors the import's own pass would meet
        raise ImportFileError(f"row {line + 1}: not a readable .xlsx row: {error}") from None

