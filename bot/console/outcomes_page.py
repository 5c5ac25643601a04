"""The outcomes page: per calendar entry, care occasion, channel code, staff member, store
or layer over a chosen range — members reached and held out, conversion and revenue per
member in each, the lift with its 95 % interval, or "not enough data". Operators only."""

from __future__ import annotations

from datetime import date, timedelta

from aiohttp import web

from bot.console.keys import operators_only
from bot.console.render import render
from bot.shared.keys import SESSIONS, SETTINGS
from bot.shared.outcomes_report import interval_text, last_days, names_for, outcomes_report, percent
from storage.models import utcnow

BY = {"entry": "内容日历", "occasion": "关怀", "channel": "活码", "staff": "店员", "store": "门店", "layer": "分层"}
MAX_DAYS = 366


def add_routes(console: web.Application) -> None:
    console.router.add_get("/outcomes", outcomes_page)


def _day(text: str | None, default: date) -> date | None:
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


async def outcomes_page(request: web.Request) -> web.Response:
    operators_only(request)
    settings = request.config_dict[SETTINGS]
    by = request.query.get("by", "entry")
    if by not in BY:
        by = "entry"
    yesterday = last_days(utcnow(), settings.zone)[1]  # the brand's yesterday
    end = _day(request.query.get("to"), yesterday)
    start = _day(request.query.get("from"), (end or yesterday) - timedelta(days=29))
    problem = ""
    if start is None or end is None:
        problem, start, end = "日期格式应为 2026-11-01", yesterday - timedelta(days=29), yesterday
    elif end < start or (end - start).days >= MAX_DAYS:
        problem, start, end = "开始日期须早于结束日期，且不超过一年", yesterday - timedelta(days=29), yesterday
    report = await outcomes_report(request.config_dict[SESSIONS], settings.outcomes, settings.zone, by, start, end,
                                   names_for(settings, by))
    return render(request, "outcomes.html", report=report, by=by, choices=BY, problem=problem,
                  percent=percent, interval=interval_text, start=start, end=end)
