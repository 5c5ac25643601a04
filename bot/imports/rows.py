"""One cell's text into a typed value. Every parser raises RowError with the reason a
person reads in the rejects report; none touches the database."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from storage.orders import MAX_AMOUNT_CENTS


class RowError(ValueError):
    """Why one row is rejected."""


# ── Birthdays ────────────────────────────────────────────────────────────────────────

LUNAR_WORDS = ("农历", "阴历", "陰曆", "農曆", "lunar")
SOLAR_WORDS = ("公历", "阳历", "新历", "公曆", "陽曆", "solar", "gregorian")
# What a calendar column may say. A column headed 农历 often holds 是/否.
CALENDAR_VALUES = {
    **{word: "lunar" for word in (*LUNAR_WORDS, "是", "y", "yes", "true", "1")},
    **{word: "solar" for word in (*SOLAR_WORDS, "否", "n", "no", "false", "0")},
}


@dataclass(frozen=True)
class Birthday:
    year: int | None
    month: int
    day: int
    calendar: str  # solar | lunar
    leap_month: bool = False

    @property
    def md(self) -> int:
        return self.month * 100 + self.day


_CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_CN_MONTHS = {"正": 1, "冬": 11, "腊": 12, "臘": 12}
_NUMERIC_FULL = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
_NUMERIC_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_NUMERIC_SHORT = re.compile(r"(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
_CHINESE = re.compile(r"(?:(\d{4})\s*年?)?([正冬腊臘一二三四五六七八九十]{1,3})月([初廿卅一二三四五六七八九十]{1,3})日?")
_BRACKETS = re.compile(r"[()（）\[\]【】]")


def _chinese_number(text: str) -> int | None:
    """十一 → 11, 二十 → 20, 廿三 → 23, 三十 → 30, 初五 → 5; None when it is not one."""
    text = text.removeprefix("初")
    if text.startswith("廿"):
        text = "二十" + text[1:]
    if text.startswith("卅"):
        text = "三十" + text[1:]
    if not text or any(ch not in _CN_DIGITS for ch in text):
        return None
    if len(text) == 1:
        return _CN_DIGITS[text]
    if len(text) == 2 and text[0] == "十":
        return 10 + _CN_DIGITS[text[1]]
    if len(text) == 2 and text[1] == "十":
        return _CN_DIGITS[text[0]] * 10
    if len(text) == 3 and text[1] == "十" and text[2] != "十":
        return _CN_DIGITS[text[0]] * 10 + _CN_DIGITS[text[2]]
    return None


def parse_calendar(text: str) -> str | None:
    """The calendar a calendar column names: "lunar", "solar", or None when blank."""
    value = text.strip().casefold()
    if not value:
        return None
    if value in CALENDAR_VALUES:
        return CALENDAR_VALUES[value]
    raise RowError(f"unknown calendar {text.strip()!r} (use 农历/阴历/lunar or 公历/阳历/solar)")


def parse_birthday(text: str, calendar: str | None = None, today: date | None = None) -> Birthday:
    """A birthday as exports write it: "1990-08-15", "1990/8/15", "08-15", "8月15日",
    "19900815"; lunar when `calendar` says so or the text is marked 农历/阴历 (before or
    after, in brackets or not), with 闰 before a leap month ("农历1990-闰06-10"); Chinese
    month and day names ("农历闰六月初十", "八月十五") are lunar."""
    raw = text.strip()
    value = raw
    marked: str | None = None
    folded = value.casefold()
    for word in LUNAR_WORDS:
        if word in folded:
            marked = "lunar"
            folded = folded.replace(word, "")
    for word in SOLAR_WORDS:
        if word in folded:
            if marked == "lunar":
                raise RowError(f"bad birthday {raw!r}: both lunar and solar")
            marked = "solar"
            folded = folded.replace(word, "")
    value = _BRACKETS.sub("", folded).strip()
    leap = "闰" in value or "閏" in value
    value = value.replace("闰", "").replace("閏", "").strip()
    if marked and calendar and marked != calendar:
        raise RowError(f"bad birthday {raw!r}: the calendar column says {calendar}")
    chosen = marked or calendar

    year: int | None
    if match := _NUMERIC_FULL.fullmatch(value) or _NUMERIC_COMPACT.fullmatch(value):
        year, month, day = int(match[1]), int(match[2]), int(match[3])
    elif match := _NUMERIC_SHORT.fullmatch(value):
        year, month, day = None, int(match[1]), int(match[2])
    elif match := _CHINESE.fullmatch(value):
        year = int(match[1]) if match[1] else None
        month_name = match[2]
        parsed_month = _CN_MONTHS[month_name] if month_name in _CN_MONTHS else _chinese_number(month_name)
        parsed_day = _chinese_number(match[3])
        if parsed_month is None or parsed_day is None:
            raise RowError(f"bad birthday {raw!r}")
        month, day = parsed_month, parsed_day
        if chosen == "solar":
            raise RowError(f"bad birthday {raw!r}: Chinese month and day names are lunar")
        chosen = "lunar"
    else:
        raise RowError(f"bad birthday {raw!r}")
    if leap:
        if chosen == "solar":
            raise RowError(f"bad birthday {raw!r}: a leap month (闰) is only in the lunar calendar")
        chosen = "lunar"
    chosen = chosen or "solar"

    today = today or date.today()
    if year is not None and not 1900 <= year <= today.year:
        raise RowError(f"bad birthday {raw!r}: year out of range")
    if not 1 <= month <= 12:
        raise RowError(f"bad birthday {raw!r}: no month {month}")
    if chosen == "lunar":
        if not 1 <= day <= 30:
            raise RowError(f"bad birthday {raw!r}: a lunar day is 1 to 30")
    else:
        try:
            # Without a year, any day some year has: 02-29 too.
            born = date(year if year is not None else 2000, month, day)
        except ValueError:
            raise RowError(f"bad birthday {raw!r}: no such date") from None
        if born > today:
            raise RowError(f"bad birthday {raw!r}: in the future")
    return Birthday(year, month, day, chosen, leap)


# ── Other member values ──────────────────────────────────────────────────────────────

_TRUE = {"是", "y", "yes", "true", "t", "1", "付费", "付费会员", "vip"}
_FALSE = {"否", "n", "no", "false", "f", "0", "非付费", "免费"}


def parse_bool(text: str, field: str) -> bool | None:
    value = text.strip().casefold()
    if not value:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise RowError(f"bad {field} {text.strip()!r} (use 是/否, yes/no, true/false or 1/0)")


_DATE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T].*)?")


def parse_date(text: str, field: str) -> date | None:
    """A calendar date: "2020-01-05", "2020/1/5", "2020年1月5日", "20200105"; a time
    after it is ignored."""
    value = text.strip()
    if not value:
        return None
    match = _DATE.fullmatch(value) or _NUMERIC_COMPACT.fullmatch(value)
    if match:
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            pass
    raise RowError(f"bad date {value!r} in {field}")


def text_value(text: str, field: str, max_length: int) -> str | None:
    value = text.strip()
    if not value:
        return None
    if len(value) > max_length:
        raise RowError(f"{field} longer than {max_length} characters")
    return value


# ── Orders ───────────────────────────────────────────────────────────────────────────

_AMOUNT_MARKS = "¥￥元 "  # around the number; thousands commas anywhere


def parse_cents(text: str) -> int:
    """Yuan with at most two decimals ("¥1,280.50", "99"; "-5" is refused) into cents.
    Plain string operations: this runs for every row of an orders file."""
    value = text.strip()
    whole, dot, fraction = value.partition(".")
    if not (whole.isdigit() and whole.isascii()):
        if not value:
            raise RowError("missing amount")
        cleaned = value.replace(",", "").replace("，", "").strip(_AMOUNT_MARKS)
        negative = cleaned.startswith("-")
        if negative:
            cleaned = cleaned[1:].lstrip(_AMOUNT_MARKS)
        whole, dot, fraction = cleaned.partition(".")
        if not (whole.isdigit() and whole.isascii()) or dot and not fraction:
            raise RowError(f"bad amount {value!r} (yuan, at most 2 decimals)")
    else:
        negative = False
    if dot and not (len(fraction) <= 2 and fraction.isdigit() and fraction.isascii()):
        raise RowError(f"bad amount {value!r} (yuan, at most 2 decimals)")
    if len(whole.lstrip("0")) > 12:  # before int(): 5,000 digits would be slow, and past 4,300 an error
        raise RowError(f"amount {value[:20]}… over {MAX_AMOUNT_CENTS // 100} yuan")
    cents = int(whole) * 100 + (int(fraction) * (10 if len(fraction) == 1 else 1) if fraction else 0)
    if negative and cents:
        raise RowError(f"negative amount {value}")
    if cents > MAX_AMOUNT_CENTS:
        raise RowError(f"amount {value} over {MAX_AMOUNT_CENTS // 100} yuan")
    return cents


_LOOSE_TIME = re.compile(
    r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T]+(\d{1,2})[:：时](\d{1,2})(?:[:：分](\d{1,2})(?:\.\d+)?)?秒?)?"
)


def parse_utc_time(text: str, zone: ZoneInfo, field: str = "ordered_at") -> datetime:
    """A moment: "2026-11-01 14:30[:00]", ISO 8601 (with or without an offset),
    "2026/11/1 14:30"; a time without an offset is in `zone`. Returned as a naive
    datetime in UTC (cheaper per row than an aware one; the writer stores it as UTC)."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        if not value:
            raise RowError(f"missing {field}") from None
        match = _LOOSE_TIME.fullmatch(value)
        if match is None:
            raise RowError(f"bad date {value!r} in {field}") from None
        try:
            moment = datetime(*(int(part) for part in match.groups() if part is not None))  # type: ignore[misc]
        except ValueError:
            raise RowError(f"bad date {value!r} in {field}") from None
    offset = moment.utcoffset() if moment.tzinfo else zone.utcoffset(moment)
    if moment.tzinfo is not None:
        moment = moment.replace(tzinfo=None)
    return moment - offset if offset else moment


def parse_time(text: str, zone: ZoneInfo, field: str = "ordered_at") -> datetime:
    """As parse_utc_time, but aware (UTC)."""
    return parse_utc_time(text, zone, field).replace(tzinfo=timezone.utc)
