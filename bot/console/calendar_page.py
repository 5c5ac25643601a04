"""The content calendar (operators only): the month's grid with each occurrence's reach,
an entry's form with live checking and a preview, and pausing and resuming.

Every check is the one `siyu calendar load` makes (`scheduler.calendar.parse_entry`
and the database's store codes and tags), and saving changes one entry by the rules of
loading a file; reach is counted by the preview's code, once per request."""

from __future__ import annotations

import re
from collections import OrderedDict
from datetime import datetime, time, timedelta
from time import monotonic as time_now
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from bot.console import calendar_month as month
from bot.console.calendar_check import REACH, Checked, check, entry_json, form_context, layer_labels, saved_month
from bot.console.calendar_form import (
    CRON_DAYS,
    blank_values,
    by_field,
    form_values,
    schedule_of,
    values_of,
    with_labels,
)
from bot.console.config_page import held_bodies, store_change
from bot.console.keys import operators_only
from bot.console.render import render
from bot.settings.calendar_context import calendar_context
from bot.settings.delivery import preview_policy
from bot.settings.model import Settings
from bot.shared import strict_json
from bot.shared.keys import SESSIONS
from bot.shared.live_config import live
from scheduler.calendar import EntrySpec, occurrences, to_instant
from scheduler.calendar_preview import Preview, preview_calendar
from scheduler.calendar_run import calendar_entries, save_entry, set_paused
from storage import calendar as store
from storage.models import utcnow

NOTICES = ("saved", "paused", "resumed")
# A month's reach counts every member (seconds at 1M): kept a couple of minutes per month
# and calendar, so moving between months and reloading is quick. Saving, pausing or
# resuming here starts afresh; a file loaded meanwhile changes the key.
MONTHS = web.AppKey("calendar_months", OrderedDict)  # key → (monotonic time, Preview)
MONTH_SECONDS, MONTHS_KEPT = 120.0, 12
PER_DAY = 12  # occurrences shown in a day's cell (an every-minute entry has 1,440)


def add_routes(console: web.Application) -> None:
    console[REACH] = OrderedDict()
    console[MONTHS] = OrderedDict()
    console.router.add_get("/calendar", month_view)
    console.router.add_get("/calendar/new", new_entry)
    console.router.add_post("/calendar/new", create_entry)
    console.router.add_post("/calendar/validate", validate)
    console.router.add_get("/calendar/{id}/edit", edit_entry)
    console.router.add_post("/calendar/{id}/edit", update_entry)
    console.router.add_post("/calendar/{id}/pause", pause_entry)
    console.router.add_post("/calendar/{id}/resume", resume_entry)


def entry_path(entry_id: str, action: str = "edit") -> str:
    return f"/admin/calendar/{quote(entry_id, safe='')}/{action}"


def month_path(first: Any, **query: str) -> str:
    return "/admin/calendar?" + urlencode({"month": f"{first:%Y-%m}", **query})


# -- the month -------------------------------------------------------------------------

async def month_view(request: web.Request) -> web.Response:
    operators_only(request)
    settings: Settings = live(request).settings
    zone = settings.zone
    today = datetime.now(zone).date()
    first = month.month_of(request.query.get("month"), today)
    days = month.days_in(first)
    context = calendar_context(settings)
    sessions = request.config_dict[SESSIONS]
    entries = await calendar_entries(sessions)
    async with sessions() as session:
        _tags, stores = await store.known_names(session)
    kept: OrderedDict[Any, tuple[float, Preview]] = request.app[MONTHS]
    key = (first, days, tuple(entries))
    if (hit := kept.get(key)) is not None and time_now() - hit[0] < MONTH_SECONDS:
        preview = hit[1]
    else:
        preview = await preview_calendar(sessions, entries, context.renderer, context.persona,
                                         preview_policy(settings), settings.delivery.cap_scheme, first, days)
        kept[key] = (time_now(), preview)
    kept.move_to_end(key)
    while len(kept) > MONTHS_KEPT:
        kept.popitem(last=False)
    begin = to_instant(datetime.combine(first, time()), zone) - timedelta(microseconds=1)
    end = to_instant(datetime.combine(month.shift(first, 1), time()), zone) - timedelta(microseconds=1)
    paused = [(e, at.astimezone(zone)) for e in entries if e.paused for at in occurrences(e, zone, begin, end)]
    grid = month.by_day(preview.outcomes, paused)
    notice = request.query.get("notice")
    return render(
        request, "calendar.html", first=first, weeks=month.weeks(first), grid=grid, today=today,
        previous=month_path(month.shift(first, -1)), next=month_path(month.shift(first, 1)), this_month=month_path(today),
        entries=entries, fires=month.fires_per_entry(grid), samples=preview.samples, zone=zone.key,
        channels=month.CHANNEL_LABELS, held_summary=month.held_summary, entry_path=entry_path,
        labels=live(request).handlers.layer_labels, store_names=dict(stores),
        when=lambda e: _when(e, settings), notice=notice if notice in NOTICES else None,
        notice_entry=request.query.get("entry", ""), here=request.path_qs, per_day=PER_DAY,
    )


WEEKDAY_WORDS = dict(zip(CRON_DAYS, ("周一", "周二", "周三", "周四", "周五", "周六", "周日"), strict=True))


def _when(entry: EntrySpec, settings: Settings) -> tuple[str, dict[str, str]]:
    """When an entry fires, in words where its cron line is a simple one (the phrase is
    translated in the page, then filled)."""
    if entry.cron is None:
        return "{at}", {"at": f"{entry.at.astimezone(settings.zone):%Y-%m-%d %H:%M}" if entry.at else ""}
    words = schedule_of(entry.cron)
    match words["repeat"]:
        case "daily":
            return "每天 {time}", {"time": words["time"]}
        case "weekly":
            return "每{day} {time}", {"day": WEEKDAY_WORDS[words["weekday"]], "time": words["time"]}
        case "monthly":
            return "每月 {day} 日 {time}", {"day": words["monthday"], "time": words["time"]}
    return "{at}", {"at": entry.cron}


# -- the form --------------------------------------------------------------------------

async def new_entry(request: web.Request) -> web.Response:
    operators_only(request)
    values = blank_values()
    day = request.query.get("date", "")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):  # from a day of the grid: once, that day at ten
        values |= {"when": "at", "at": f"{day}T10:00"}
    return await _form(request, Checked(values), None)


async def create_entry(request: web.Request) -> web.StreamResponse:
    operators_only(request)
    return await _save(request, form_values(await request.post()), None)


async def edit_entry(request: web.Request) -> web.Response:
    operators_only(request)
    settings: Settings = live(request).settings
    entry = await _existing(request)
    async with request.config_dict[SESSIONS]() as session:
        _tags, stores = await store.known_names(session)
    values = with_labels(values_of(entry, settings.zone), layer_labels(settings), stores)
    values["message"] = live(request).renderer.source(entry.template) or ""
    checked = await check(request, values, entry.id)
    return await _form(request, checked, entry)


async def update_entry(request: web.Request) -> web.StreamResponse:
    operators_only(request)
    entry = await _existing(request)
    return await _save(request, form_values(await request.post()), entry)


async def _existing(request: web.Request) -> EntrySpec:
    async with request.config_dict[SESSIONS]() as session:
        row = await store.get_entry(session, request.match_info["id"])
    if row is None:
        raise web.HTTPNotFound(text="no such calendar entry / 没有这个日历条目")
    return EntrySpec.of(row)


async def _save(request: web.Request, values: dict[str, str], existing: EntrySpec | None) -> web.StreamResponse:
    """Check again on the server and store the one entry; or show the form again, as typed,
    with every problem."""
    settings: Settings = live(request).settings
    original = existing.id if existing else None
    checked = await check(request, values, original, with_preview=False)
    if checked.entry is not None and not checked.problems:
        name, text = checked.message
        if text is not None and live(request).settings.templates.texts.get(name) != text:
            # The entry's own text first: the next scan must find what it names.
            texts = dict((await held_bodies(request)).get("templates") or {}) | {name: text}
            await store_change(request, "templates", texts, "console", name)
            settings = live(request).settings
        context = calendar_context(settings)
        outcome, problems = await save_entry(request.config_dict[SESSIONS], checked.entry, context.known_tags, utcnow(),
                                             new=existing is None, media_dir=context.media_dir)
        if outcome is not None:
            request.app[MONTHS].clear()  # the operator expects to see her change counted
            first = saved_month(checked.entry, settings.zone, utcnow())
            raise web.HTTPFound(month_path(first, notice="saved", entry=checked.entry.id))
        checked.problems = by_field(problems)  # taken or removed in the meantime
    if checked.entry is not None:
        checked.preview = (await check(request, values, original)).preview
    return await _form(request, checked, existing, http_status=400)


async def _form(request: web.Request, checked: Checked, existing: EntrySpec | None,
                http_status: int = 200) -> web.Response:
    settings: Settings = live(request).settings
    async with request.config_dict[SESSIONS]() as session:
        tags, stores = await store.known_names(session)
    notice = request.query.get("notice")
    stores = [(name, code) for code, name in stores]  # chosen by name; the code in the tooltip
    return render(
        request, "calendar_form.html", http_status=http_status, values=checked.values, problems=checked.problems,
        preview=entry_json(checked, request), existing=existing, tags=tags, stores=stores,
        action=entry_path(existing.id) if existing else "/admin/calendar/new", entry_path=entry_path,
        channels=month.CHANNEL_LABELS, notice=notice if notice in NOTICES else None, cron_days=CRON_DAYS,
        **form_context(settings),
    )


async def validate(request: web.Request) -> web.Response:
    """The form as typed (JSON, fields by name; "original": the id being edited): its
    problems by field, and a preview when it reads as an entry."""
    operators_only(request)
    try:
        body = strict_json.loads(await request.read())
    except strict_json.BadJson:
        raise web.HTTPBadRequest(text="a JSON object is expected") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="a JSON object is expected")
    original = body.get("original") or None
    checked = await check(request, form_values(body), str(original) if original else None)
    return web.json_response({"ok": checked.entry is not None and not checked.problems,
                              "problems": checked.problems, "preview": entry_json(checked, request)})


# -- pause and resume ------------------------------------------------------------------

async def pause_entry(request: web.Request) -> web.Response:
    return await _pause(request, True)


async def resume_entry(request: web.Request) -> web.Response:
    return await _pause(request, False)


async def _pause(request: web.Request, paused: bool) -> web.Response:
    operators_only(request)
    entry_id = request.match_info["id"]
    if await set_paused(request.config_dict[SESSIONS], entry_id, paused, utcnow()) is None:
        raise web.HTTPNotFound(text="no such calendar entry / 没有这个日历条目")
    request.app[MONTHS].clear()
    back = str((await request.post()).get("next", ""))
    if not back.startswith("/admin/calendar"):  # only back to a calendar page
        back = "/admin/calendar"
    back = _without_notice(back)
    joiner = "&" if "?" in back else "?"
    raise web.HTTPFound(f"{back}{joiner}{urlencode({'notice': 'paused' if paused else 'resumed', 'entry': entry_id})}")


def _without_notice(path_qs: str) -> str:
    path, _, query = path_qs.partition("?")
    kept = [part for part in query.split("&") if part and not part.startswith(("notice=", "entry="))]
    return path + ("?" + "&".join(kept) if kept else "")
