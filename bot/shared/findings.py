"""What `siyu doctor` reports: one finding per check, and for one that is not well, what
to do about it in Chinese and in English (operators read the first, engineers often the
second)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "fail", "warn", "skip", "info"]


@dataclass(frozen=True, slots=True)
class Finding:
    check: str  # what was checked, in a few words
    status: Status
    detail: str = ""  # what was found (an errcode, a status, a figure)
    fix_zh: str = ""  # how to put it right, in Chinese
    fix_en: str = ""  # the same in English

    @classmethod
    def ok(cls, check: str, detail: str = "") -> Finding:
        return cls(check, "ok", detail)

    @classmethod
    def fail(cls, check: str, detail: str, fix_zh: str, fix_en: str) -> Finding:
        return cls(check, "fail", detail, fix_zh, fix_en)

    @classmethod
    def warn(cls, check: str, detail: str, fix_zh: str, fix_en: str) -> Finding:
        return cls(check, "warn", detail, fix_zh, fix_en)

    @classmethod
    def skip(cls, check: str, why: str) -> Finding:
        return cls(check, "skip", why)

    @classmethod
    def info(cls, check: str, detail: str) -> Finding:
        return cls(check, "info", detail)
