"""Checking a calendar entry as typed in the console, and previewing it: the checks of
`siyu calendar load` (the entry itself, then the database's store codes and tags), the
text for a sample member of the audience, the next fire times and the reach."""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.console.calendar_form import by_field, entry_item, schedule_cron, with_ids
from bot.console.config_words import VARIABLES, spoken
from bot.console.calendar_month import held_summary
from bot.console.i18n import translator
from bot.console.keys import LANGUAGE
from bot.settings.calendar_context import calendar_context
from bot.settings.delivery import preview_policy
from bot.settings.model import Settings
from bot.shared.keys import SESSIONS
from bot.shared.live_config import live
from content_templates.renderer import SHIPPED
from scheduler.calendar import EntrySpec, next_times, parse_entry
from scheduler.calendar_preview import EntryPreview, entry_classes, preview_entry
from scheduler.calendar_run import CalendarOptions, entry_problems, taken
from storage import calendar as store
from storage.audiences import LIFECYCLE, MemberClass
from storage.models import utcnow

HAN = re.compile(r"[\u4e00-\u9fff]")  # a problem the console wrote in Chinese itself
WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


@dataclass(slots=True)
class Checked:
    values: dict[str, str]  # as typed (the id of an entry being edited: its own)
    entry: EntrySpec | None = None  # None: it does not read as an entry
    message: tuple[str, str | None] = ("", None)  # the template and the text typed for it (None: not typed here)
    problems: dict[str, list[str]] = field(default_factory=dict)  # field → messages
    preview: EntryPreview | None = None


async def check(request: web.Request, values: dict[str, str], original: str | None,
                with_preview: bool = True) -> Checked:
    """`values` checked as the entry `original` (its id cannot change) or a new one."""
    settings: Settings = live(request).settings
    sessions = request.config_dict[SESSIONS]
    if original is not None:
        values = values | {"id": original}
    async with sessions() as session:
        _tags, stores = await store.known_names(session)
    typed = values
    values = with_ids(values, layer_labels(settings), stores)
    settings, values["template"] = with_message(settings, values, live(request).renderer.source)
    typed = typed | {"template": values["template"]}
    context = calendar_context(settings)
    item = entry_item(values)
    entry, problems = parse_entry(item, context)
    if entry is not None:
        problems = await entry_problems(sessions, entry, context.known_tags, new=original is None,
                                        media_dir=context.media_dir)
    elif original is None and item["id"] and not any(p.startswith("id:") for p in problems):
        async with sessions() as session:  # a taken id, said at once rather than after the rest is mended
            if await store.get_entry(session, item["id"]) is not None:
                problems.insert(0, taken(item["id"]))
    found = by_field(problems)
    for key, more in schedule_cron(values)[1].items():
        found.setdefault(key, []).extend(more)
    _ = translator(request.get(LANGUAGE, "zh"))
    found = {key: [_(p) if HAN.search(p.split(":", 1)[0]) else spoken(p, _).text for p in ps] for key, ps in found.items()}
    checked = Checked(typed, entry, problems=found)
    checked.message = (values["template"], settings.templates.texts.get(values["template"]))
    if with_preview and entry is not None:
        classes = await _reach(request, entry, settings.delivery.cap_scheme)
        checked.preview = await preview_entry(sessions, entry, context.renderer, context.persona,
                                              preview_policy(settings), settings.delivery.cap_scheme, utcnow(), classes)
    return checked


REACH = web.AppKey("calendar_reach", OrderedDict)  # (id, channel, audience, cap scheme) → (when, classes)
REACH_SECONDS, REACH_KEPT = 60.0, 64


async def _reach(request: web.Request, entry: EntrySpec, cap_scheme: str) -> list[MemberClass]:
    """The audience's classes, counted again at most once a minute: over a million members
    that takes a second or two, and typing the title or the template does not change it."""
    kept: OrderedDict[tuple[str, ...], tuple[float, list[MemberClass]]] = request.app[REACH]
    key = (entry.id, entry.channel, entry.audience.to_json(), cap_scheme)
    if (hit := kept.get(key)) is not None and time.monotonic() - hit[0] < REACH_SECONDS:
        return hit[1]
    classes = await entry_classes(request.config_dict[SESSIONS], entry, cap_scheme)
    kept[key] = (time.monotonic(), classes)
    kept.move_to_end(key)
    while len(kept) > REACH_KEPT:
        kept.popitem(last=False)
    return classes


def entry_json(checked: Checked, request: web.Request) -> dict[str, Any] | None:
    """The preview as the page shows it (and the validate endpoint sends it)."""
    preview, entry = checked.preview, checked.entry
    if preview is None or entry is None:
        return None
    _ = translator(request.get(LANGUAGE, "zh"))
    outcome = preview.outcome
    name, store = preview.sample or (None, None)
    return {
        "text": preview.text,
        "sample": {"name": name, "store": store, "made_up": preview.sample is None},
        "upcoming": [f"{at:%Y-%m-%d %H:%M} {_(WEEKDAYS[at.weekday()])}" for at in preview.upcoming],
        "audience": outcome.audience, "reached": outcome.reached, "deferred": outcome.deferred,
        "held": [[_(label), count] for label, count in held_summary(outcome.held)],
        "paused": entry.paused,
        "attachments": attachment_lines(entry, _),
    }


def attachment_lines(entry: EntrySpec, _: Callable[..., str]) -> list[str]:
    """What a mass send carries besides its text, one line each, as the preview lists it."""
    mass, lines = entry.mass, []
    if mass.link is not None:
        lines.append(_("链接卡片：{title}", title=mass.link.title) + (f"（{mass.link.desc}）" if mass.link.desc else "")
                     + f" → {mass.link.url}")
    lines.extend(_("图片：{name}", name=name) for name in mass.images)
    if (mini := mass.miniprogram) is not None:
        lines.append(_("小程序：{title}（{appid} · {page}，封面 {cover}）", title=mini.title, appid=mini.appid,
                       page=mini.page, cover=mini.cover))
    return lines


def saved_month(entry: EntrySpec, zone: ZoneInfo, now: datetime) -> date:
    """The month to show after saving: the one the entry next fires in, or this one."""
    upcoming = next_times(entry, zone, now, 1)
    return (upcoming[0] if upcoming else now).astimezone(zone).date().replace(day=1)


def form_context(settings: Settings) -> dict[str, Any]:
    """What the form offers to choose from: schemes and their layers (label, id), templates, the zone."""
    labels = layer_labels(settings)
    schemes = {s.name: [(labels[s.name].get(n, n), n) for n in dict.fromkeys(layer.name for layer in s.layers)]
               for s in settings.layers.schemes}
    return {"schemes": schemes, "scheme_labels": {s.name: s.label or s.name for s in settings.layers.schemes},
            "lifecycle": schemes.get(LIFECYCLE, []), "zone": settings.zone.key,
            "templates": calendar_templates(settings), "variables": VARIABLES}


def layer_labels(settings: Settings) -> dict[str, dict[str, str]]:
    """Scheme → layer id → the label operators see."""
    return {s.name: s.layer_labels() for s in settings.layers.schemes}


def own_template(entry_id: str) -> str:
    """Where an entry's own message text is kept (typed in the form rather than a file)."""
    return f"calendar/{re.sub(r'[^0-9A-Za-z_-]', '_', entry_id) or 'draft'}.txt.j2"


def with_message(settings: Settings, values: Mapping[str, str],
                 source: Callable[[str], str | None]) -> tuple[Settings, str]:
    """The settings with the message typed in the form as the entry's own text, and the
    template the entry then names. Untouched text keeps the chosen template."""
    text = values.get("message", "").replace("\r\n", "\n").strip()
    template = values.get("template", "").strip()
    if not text or (template and (source(template) or "").strip() == text):
        return settings, template
    name = own_template(values.get("id", "").strip())
    texts = dict(settings.templates.texts) | {name: text}
    return settings.model_copy(update={"templates": settings.templates.model_copy(update={"texts": texts})}), name


def calendar_templates(settings: Settings) -> list[str]:
    """Calendar templates on disk (the operator's folder, then the shipped ones), without
    the prompt that asks staff to confirm a mass send."""
    prompt = CalendarOptions({}).prompt_template
    folders = ([Path(settings.templates.dir)] if settings.templates.dir else []) + [SHIPPED]
    found = {f"calendar/{path.name}" for folder in folders for path in (folder / "calendar").glob("*.j2")}
    return sorted(found - {prompt})
