"""What an import tells: counts, and every rejected row with its line and reason
(all of them in FILE.rejects.csv, in line order; the first few on screen)."""

from __future__ import annotations

import csv
import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.imports.cells import safe_row

SHOWN_REJECTS = 20

@dataclass(frozen=True, order=True)
class Reject:
    line: int
    reason: str
    values: tuple[str, ...] = field(compare=False)


@dataclass
class ImportReport:
    kind: str
    file: Path
    dry_run: bool
    columns: dict[str, str] = field(default_factory=dict)  # field → header used
    encoding: str | None = None
    read: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejects: list[Reject] = field(default_factory=list)  # by line: all, or the first SHOWN_REJECTS
    rejects_file: Path | None = None
    header: list[str] = field(default_factory=list)

    def row(self, reject: Reject) -> dict[str, str]:
        """A rejected row as the file's header → its value."""
        return {name: value for name, value in zip(self.header, reject.values) if name}


class Rejects:
    """Collects rejected rows: all into FILE.rejects.csv (line, reason, the row as read)
    in line order, and into the report all of them, or only the first few by line."""

    def __init__(self, report: ImportReport, header: Sequence[str], keep_all: bool, path: Path):
        self._report = report
        self._header = list(header)
        self._keep_all = keep_all
        self._path = path
        self._pending: list[Reject] = []
        self._late: list[Reject] = []  # found after later lines were written (deferred rows)
        self._kept: list[tuple[int, int, Reject]] = []  # a max-heap by line (negated) when not keeping all
        self._file: Any = None
        self._writer: Any = None
        self._last_line = 0

    def add(self, line: int, reason: str, values: Sequence[str]) -> None:
        self._pending.append(Reject(line, reason, tuple(values)))

    def flush(self) -> None:
        """Write what was rejected since the last flush, in line order."""
        if not self._pending:
            return
        self._pending.sort()
        for reject in self._pending:
            self._report.rejected += 1
            if self._keep_all:
                self._report.rejects.append(reject)
            else:
                heapq.heappush(self._kept, (-reject.line, self._report.rejected, reject))
                if len(self._kept) > SHOWN_REJECTS:
                    heapq.heappop(self._kept)
            if reject.line < self._last_line:
                self._late.append(reject)
            else:
                self._write(reject)
        self._pending.clear()

    def _write(self, reject: Reject) -> None:
        if self._writer is None:
            self._file = self._path.open("w", encoding="utf-8-sig", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(safe_row(["line", "reason", *self._header]))
            self._report.rejects_file = self._path
        self._writer.writerow(safe_row([reject.line, reject.reason, *reject.values]))
        self._last_line = reject.line

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()
        if self._late:
            self._merge_late()
        if not self._keep_all:
            self._report.rejects = sorted(reject for _, _, reject in self._kept)
        else:
            self._report.rejects.sort()

    def _merge_late(self) -> None:
        """Put the late rejects in their place in the file, reading it back as a stream."""
        merged = self._path.with_name(self._path.name + ".tmp")
        late = iter(sorted(self._late))
        waiting = next(late, None)
        with self._path.open(encoding="utf-8-sig", newline="") as source, \
                merged.open("w", encoding="utf-8-sig", newline="") as target:
            reader, writer = csv.reader(source), csv.writer(target)
            writer.writerow(next(reader))
            for row in reader:
                while waiting is not None and waiting.line < int(row[0]):
                    writer.writerow(safe_row([waiting.line, waiting.reason, *waiting.values]))
                    waiting = next(late, None)
                writer.writerow(row)  # written safe already
            while waiting is not None:
                writer.writerow(safe_row([waiting.line, waiting.reason, *waiting.values]))
                waiting = next(late, None)
        merged.replace(self._path)


def rejects_path(path: Path) -> Path:
    return path.with_name(path.name + ".rejects.csv")


def report_json(report: ImportReport) -> dict[str, Any]:
    return {
        "kind": report.kind,
        "file": str(report.file),
        "dry_run": report.dry_run,
        "columns": report.columns,
        "encoding": report.encoding,
        "read": report.read,
        "imported": report.imported,
        **({"updated": report.updated} if report.kind == "members" else {}),
        "unchanged": report.unchanged,
        "rejected": report.rejected,
        "rejects_file": str(report.rejects_file) if report.rejects_file else None,
        "rejects": [{"line": r.line, "reason": r.reason, "row": report.row(r)} for r in report.rejects],
    }
