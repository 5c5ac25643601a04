"""Crontab lines read as cron reads them.

APScheduler's `CronTrigger.from_crontab` keeps numeric weekdays in its own numbering
(0 = Monday), so `0 9 * * 1` fires on Tuesdays, while in every crontab 0 and 7 are Sunday
and 1 is Monday. Numeric weekdays are therefore spelt out as names before APScheduler
sees them; names (`mon-fri`) mean the same to both and pass unchanged.
"""

from __future__ import annotations

from datetime import tzinfo

from apscheduler.triggers.cron import CronTrigger

_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def crontab_trigger(expression: str, zone: tzinfo) -> CronTrigger:
    """The trigger for a five-field crontab line; ValueError when it is not one."""
    fields = expression.split()
    if len(fields) == 5:
        fields[4] = cron_weekdays(fields[4])
    return CronTrigger.from_crontab(" ".join(fields), timezone=zone)


def cron_weekdays(field: str) -> str:
    """A crontab weekday field with its numbers as names: `1-5` → `mon,tue,wed,thu,fri`."""
    if not any(character.isdigit() for character in field):
        return field
    days: list[int] = []
    for part in field.split(","):
        days.extend(_days(part))
    return ",".join(_NAMES[day] for day in sorted(set(days)))


def _days(part: str) -> list[int]:
    span, _, step_text = part.partition("/")
    step = _number(step_text, 1, 7) if step_text else 1
    if step < 1:
        raise ValueError(f"weekday step {step_text!r} must be at least 1")
    if span == "*":
        first, last = 0, 6
    elif "-" in span:
        low, _, high = span.partition("-")
        first, last = _day(low), _day(high)
        if last < first:
            last += 7  # fri-sun, 5-0: through the week's end
    else:
        first = _day(span)
        last = first if not step_text else 6
    return [day % 7 for day in range(first, last + 1, step)]


def _day(text: str) -> int:
    lowered = text.strip().lower()
    if lowered in _NAMES:
        return _NAMES.index(lowered)
    return _number(lowered, 0, 7) % 7


def _number(text: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"weekday {text!r} is not a day of the week ({low}-{high} or sun-sat)")
    return int(text)
