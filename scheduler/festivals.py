"""Which care occasions fall on a day: the birthday keys to look up, anniversaries and
configured festivals, on the solar or the lunar calendar.

Pure functions with the day passed in. The arithmetic of one member's next birthday is
`handlers.care_dates`; this module turns a day into what the daily scan asks the
database for (the indexed `birth_md` values of the members whose birthday it is), so that
a day's birthdays are a few index ranges, not a pass over every member.
"""

from __future__ import annotations

import calendar as solar_calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from lunardate import LunarDate

from handlers.care_dates import lunar_birthday, solar_birthday


@dataclass(frozen=True, slots=True)
class Festival:
    """A festival the brand cares on: a solar date (03-08) or a lunar one (中秋 08-15)."""

    name: str
    calendar: str  # solar | lunar
    month: int
    day: int

    @property
    def occasion(self) -> str:
        return f"festival-{self.name}"


@dataclass(frozen=True, slots=True)
class BirthdayKeys:
    """The `birth_md` values (month * 100 + day, in the birthday's own calendar) of the
    members whose birthday falls on some day: solar, lunar in an ordinary month, and
    lunar given as a leap month (闰月)."""

    solar: frozenset[int] = frozenset()
    lunar: frozenset[int] = frozenset()
    lunar_leap: frozenset[int] = frozenset()


def _common_feb_28(day: date) -> bool:
    return (day.month, day.day) == (2, 28) and not solar_calendar.isleap(day.year)


def _month_has_day_30(lunar_year: int, month: int, leap: bool) -> bool:
    try:
        LunarDate(lunar_year, month, 30, leap).to_solar_date()  # the constructor does not check
    except ValueError:
        return False
    return True


def birthday_keys(day: date) -> BirthdayKeys:
    """Whose birthday is `day`, as `handlers.care_dates.next_birthday` counts: 29 February
    on 28 February in common years; a lunar day 30 on day 29 of a 29-day month; a birthday
    in a leap month in the leap month when the year has it, else in the ordinary month."""
    solar = anniversary_keys(day)
    lunar = LunarDate.from_solar_date(day.year, day.month, day.day)
    days = {lunar.day}
    if lunar.day == 29 and not _month_has_day_30(lunar.year, lunar.month, bool(lunar.is_leap_month)):
        days.add(30)
    keys = frozenset(lunar.month * 100 + d for d in days)
    if lunar.is_leap_month:
        return BirthdayKeys(solar, frozenset(), keys)
    leap_birthdays_here = LunarDate.leap_month_for_year(lunar.year) != lunar.month
    return BirthdayKeys(solar, keys, keys if leap_birthdays_here else frozenset())


def month_day_number(day: date) -> int:
    """month * 100 + day, as `members.birth_md` and the month-day index keep it."""
    return day.month * 100 + day.day


def anniversary_keys(day: date) -> frozenset[int]:
    """The month-days of the (solar) dates whose anniversary is `day`: 29 February on
    28 February in common years. A solar birthday's keys too."""
    return frozenset({month_day_number(day)} | ({229} if _common_feb_28(day) else set()))


def festival_date(festival: Festival, year: int) -> date | None:
    """The festival's solar date in `year` (for a lunar festival: in lunar year `year`,
    which for a festival in the twelfth month may fall in January of the next year)."""
    try:
        if festival.calendar == "lunar":
            return lunar_birthday(year, festival.month, festival.day)
        return solar_birthday(year, festival.month, festival.day)
    except ValueError:  # outside the lunar calendar's range (1900-2099)
        return None


def festivals_between(festivals: Iterable[Festival], first: date, last: date) -> list[tuple[Festival, date]]:
    """Every (festival, day) with first <= day <= last, in date order."""
    found = {
        (when, index): festival
        for index, festival in enumerate(festivals)
        for year in range(first.year - 1, last.year + 1)
        if (when := festival_date(festival, year)) is not None and first <= when <= last
    }
    return [(found[key], key[0]) for key in sorted(found)]


def festivals_on(festivals: Sequence[Festival], day: date) -> list[Festival]:
    return [festival for festival, _ in festivals_between(festivals, day, day)]


@lru_cache(maxsize=1024)  # a lunar conversion takes ~40 µs; the care scan asks for a few days, thousands of times
def occasion_year(when: date, lunar: bool) -> int:
    """The year an occasion counts in for "once per year": the solar year, or for a lunar
    birthday its lunar year (one lunar date can fall twice in a solar year)."""
    return LunarDate.from_solar_date(when.year, when.month, when.day).year if lunar else when.year
