"""Pure logic of conversations: office hours, hand-off reasons, staff commands, care
dates and which rules win in an exclusive tag group. No server, no database."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from handlers.care_dates import lunar_birthday, next_anniversary, next_birthday, next_care_moment
from handlers.config import FaqEntry, HandlerConfig, HandOffPolicy, OfficeHours, Persona, ReplyPolicy
from handlers.hand_off import handoff_reason
from handlers.rules import KeywordRule, TagGroup
from handlers.staff_commands import Command, parse_command
from handlers.tag_engine import winners

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEKDAYS = frozenset(range(5))


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)  # 2026-11-23 is a Monday


def test_office_hours_open_on_working_days_between_start_and_end() -> None:
    hours = OfficeHours(WEEKDAYS, time(9), time(21))
    assert hours.open_at(at(23, 9)) and hours.open_at(at(23, 20, 59))
    assert not hours.open_at(at(23, 8, 59)) and not hours.open_at(at(23, 21))
    assert not hours.open_at(at(28, 12))  # Saturday


def test_office_hours_that_run_past_midnight_belong_to_the_day_they_started() -> None:
    late = OfficeHours(frozenset({4}), time(18), time(2))  # Friday 18:00 to Saturday 02:00
    assert late.open_at(at(27, 23)) and late.open_at(at(28, 1, 30))
    assert not late.open_at(at(28, 2)) and not late.open_at(at(26, 1))  # Friday 01:00 is Thursday's night


def test_the_next_opening_skips_closed_days() -> None:
    hours = OfficeHours(WEEKDAYS, time(9), time(21))
    assert hours.next_opening(at(27, 22)) == at(30, 9)  # Friday night → Monday morning
    assert hours.next_opening(at(24, 7)) == at(24, 9)
    assert hours.next_opening(at(24, 10)) == at(24, 10)  # open now
    assert OfficeHours(frozenset(), time(9), time(21)).next_opening(at(24, 7)) is None


def config(**changes) -> HandlerConfig:
    rules = (KeywordRule(id="bread", tag="面包控", keywords=("面包",)),)
    faq = (FaqEntry(id="hours", template="faq/hours.txt.j2", keywords=("几点开门",)),)
    return HandlerConfig(Persona("小禾"), tag_rules=rules, replies=ReplyPolicy(faq=faq), **changes)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("我要投诉你们店", "hand-off word"),
        ("能帮我转人工吗", "hand-off word"),
        ("真是气死我了", "angry tone"),
        ("你们的会员卡怎么办理？", "unanswered question"),
        ("几点开门呀？", None),  # an FAQ answers it
        ("有全麦面包吗？", None),  # a tag rule understands it: the persona's tip answers
        ("谢谢，很好吃", None),  # not a question
    ],
)
def test_what_goes_to_a_person(text: str, reason: str | None) -> None:
    rules = config()
    assert handoff_reason(text, rules, bool(rules.message_matcher.matching(text))) == reason


def test_unanswered_questions_can_stay_with_the_persona() -> None:
    quiet = config(handoff=HandOffPolicy(unanswered="never"))
    assert handoff_reason("你们的会员卡怎么办理？", quiet, False) is None
    assert handoff_reason("我要退款", quiet, False) == "hand-off word"


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("完成 12", Command("done", 12)),
        ("完成12", Command("done", 12)),
        ("Done #12", Command("done", 12)),
        ("ｄｏｎｅ　１２", Command("done", 12)),
        ("跳过 3 客户出差了", Command("skip", 3, "客户出差了")),
        ("skip 3", Command("skip", 3)),
        ("查王芳", Command("find", text="王芳")),
        ("find 5678", Command("find", text="5678")),
        ("任务", Command("tasks")),
        ("完成 abc", Command("help", text="完成 abc")),
        ("finder 12", Command("help", text="finder 12")),
        ("查", Command("help", text="查")),
        ("你好", Command("help", text="你好")),
    ],
)
def test_staff_commands_are_read_in_either_language(text: str, command: Command) -> None:
    assert parse_command(text) == command


def test_a_29_february_birthday_falls_on_28_february_in_common_years() -> None:
    years = [next_birthday(2, 29, "solar", False, date(y, 1, 1)) for y in range(2026, 2030)]
    assert years == [date(2026, 2, 28), date(2027, 2, 28), date(2028, 2, 29), date(2029, 2, 28)]


def test_a_lunar_birthday_moves_through_the_solar_year() -> None:
    # 八月十五 (中秋) over several years, from published lunar calendars.
    found = [next_birthday(8, 15, "lunar", False, date(y, 1, 1)) for y in (2025, 2026, 2027)]
    assert found == [date(2025, 10, 6), date(2026, 9, 25), date(2027, 9, 15)]


def test_a_lunar_birthday_early_in_the_year_may_belong_to_last_lunar_year() -> None:
    # 腊月二十 of lunar 2025 falls on 2026-02-07: still ahead on 2026-01-10.
    assert next_birthday(12, 20, "lunar", False, date(2026, 1, 10)) == date(2026, 2, 7)


def test_a_leap_month_birthday_falls_in_the_ordinary_month_without_a_leap_month() -> None:
    leap_year = lunar_birthday(2025, 6, 10, leap=True)  # 2025 has a leap sixth month
    ordinary = lunar_birthday(2025, 6, 10, leap=False)
    assert leap_year > ordinary
    assert lunar_birthday(2026, 6, 10, leap=True) == lunar_birthday(2026, 6, 10, leap=False)


def test_day_30_falls_on_day_29_in_a_short_lunar_month() -> None:
    assert lunar_birthday(2026, 2, 30) == lunar_birthday(2026, 2, 29)  # 2026's second month has 29 days


def test_the_anniversary_is_not_the_joining_day_and_the_nearest_moment_wins() -> None:
    assert next_anniversary(date(2026, 11, 23), date(2026, 11, 23)) == date(2027, 11, 23)
    assert next_anniversary(date(2020, 12, 1), date(2026, 11, 23)) == date(2026, 12, 1)
    assert next_care_moment(3, 1, "solar", False, date(2020, 12, 1), date(2026, 11, 23)) == (
        "anniversary", date(2026, 12, 1),
    )
    assert next_care_moment(None, None, "solar", False, None, date(2026, 11, 23)) is None


def test_in_an_exclusive_group_the_first_rule_wins_and_other_groups_keep_all() -> None:
    grades = [KeywordRule(id=g, tag=g, keywords=(g,), group="意向等级") for g in ("S", "A")]
    taste = KeywordRule(id="cake", tag="蛋糕控", keywords=("蛋糕",), group="口味偏好")
    both = HandlerConfig(Persona("小禾"), tag_groups={"意向等级": TagGroup("意向等级", exclusive=True)})
    assert [r.id for r in winners([grades[1], taste, grades[0]], both)] == ["A", "cake"]
    open_groups = HandlerConfig(Persona("小禾"))
    assert [r.id for r in winners([grades[1], grades[0]], open_groups)] == ["A", "S"]
