"""Care-date arithmetic: when a member's birthday or membership anniversary next falls.

Pure functions with the day passed in. Kept here, beside the handlers, so the staff
member card and the scheduler's daily care scan count days the same way.
"""

from __future__ import annotations

from datetime import date

from lunardate import LunarDate


def solar_birthday(year: int, month: int, day: int) -> date:
    """The birthday in `year`; 29 February falls on 28 February in common years."""
    try:
        return date(year, month, day)
    except ValueError:
        if (month, day) == (2, 29):
            return date(year, 2, 28)
        raise


def lunar_birthday(lunar_year: int, month: int, day: int, leap: bool = False) -> date:
    """The solar date of a lunar birthday in `lunar_year`. A leap-month birthday falls in
    the ordinary month in years without that leap month; day 30 falls on day 29 in a
    month of 29 days."""
    for is_leap in ((True, False) if leap else (False,)):
        for d in (day, day - 1) if day == 30 else (day,):
            try:
                return LunarDate(lunar_year, month, d, is_leap).to_solar_date()
            except ValueError:
                continue
    raise ValueError(f"no lunar date {month}/{day} in {lunar_year}")


def next_birthday(
    month: int | None, day: int | None, calendar: str, leap: bool, today: date
) -> date | None:
    """The next birthday on or after `today`, or None when the birthday is unknown."""
    if month is None or day is None:
        return None
    if calendar == "lunar":
        # A lunar year starts in January or February: last lunar year's date may still be ahead.
        dates = (lunar_birthday(y, month, day, leap) for y in (today.year - 1, today.year, today.year + 1))
    else:
        dates = (solar_birthday(y, month, day) for y in (today.year, today.year + 1))
    return min(d for d in dates if d >= today)


def next_anniversary(member_since: date | None, today: date) -> date | None:
    """The next anniversary of joining, on or after `today` (not the joining day itself)."""
    if member_since is None:
        return None
    for year in (today.year, today.year + 1):
        candidate = solar_birthday(year, member_since.month, member_since.day)
        if candidate >= today and candidate > member_since:
            return candidate
    return None


def next_care_moment(
    birth_month: int | None,
    birth_day: int | None,
    calendar: str,
    leap: bool,
    member_since: date | None,
    today: date,
) -> tuple[str, date] | None:
    """The nearest of her birthday and membership anniversary: ("birthday" | "anniversary", day)."""
    moments = [
        (when, kind)
        for kind, when in (
            ("birthday", next_birthday(birth_month, birth_day, calendar, leap, today)),
            ("anniversary", next_anniversary(member_since, today)),
        )
        if when is not None
    ]
    if not moments:
        return None
    when, kind = min(moments)
    return kind, when
