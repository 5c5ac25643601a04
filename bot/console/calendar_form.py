"""The calendar entry form, as plain functions: what the operator typed (text per field)
to the entry a calendar file would hold, and the checker's problems back to the fields
they are about. Checking itself is `scheduler.calendar.parse_entry`, the same as
`siyu calendar load`: the console never judges an entry by rules of its own."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.calendar import EntrySpec

TEXT_FIELDS = ("id", "title", "when", "cron", "at", "channel", "template", "scheme",
               "images", "link_title", "link_url", "link_cover")  # the last four: a Moments post's
LIST_FIELDS = ("layers", "lifecycle", "tags", "exclude_tags", "stores")
FLAG_FIELDS = ("everyone", "paused")
FIELDS = (*TEXT_FIELDS, *LIST_FIELDS, *FLAG_FIELDS)
GENERAL = "entry"  # problems about no one field
_SEPARATORS = re.compile(r"[,，、;；\n]+")
_LOCAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")
_AUDIENCE_KEYS = {"scheme", *LIST_FIELDS, "everyone"}


def blank_values() -> dict[str, str]:
    return {name: "" for name in FIELDS} | {"when": "cron", "scheme": "value"}


def form_values(raw: Mapping[str, Any]) -> dict[str, str]:
    """The fields of a posted form or JSON body, as text (a ticked box: "on")."""
    values = blank_values()
    for name in TEXT_FIELDS + LIST_FIELDS:
        if name in raw and raw[name] is not None:
            values[name] = str(raw[name])[:2000]
    for name in FLAG_FIELDS:
        values[name] = "on" if raw.get(name) in ("on", "true", "1", True) else ""
    values["when"] = "at" if values["when"] == "at" else "cron"
    if _LOCAL_TIME.fullmatch(values["at"].strip()):  # as a file writes it: the date-time box wants a T
        values["at"] = values["at"].strip().replace(" ", "T")
    return values


def values_of(entry: EntrySpec, zone: ZoneInfo) -> dict[str, str]:
    """An entry as the form shows it."""
    audience = entry.audience
    values = blank_values() | {
        "id": entry.id, "title": entry.title, "channel": entry.channel, "template": entry.template,
        "when": "at" if entry.at is not None else "cron", "cron": entry.cron or "",
        "at": entry.at.astimezone(zone).strftime("%Y-%m-%dT%H:%M") if entry.at else "",
        "scheme": audience.scheme, "everyone": "on" if audience.everyone else "", "paused": "on" if entry.paused else "",
    }
    values.update({name: ", ".join(getattr(audience, name)) for name in LIST_FIELDS})
    values["images"] = ", ".join(entry.images)
    if entry.link is not None:
        values |= {"link_title": entry.link.title, "link_url": entry.link.url, "link_cover": entry.link.cover}
    return values


def names(text: str) -> list[str]:
    """A list typed in one box: separated by commas (also ， 、 ;) or lines."""
    return [part.strip() for part in _SEPARATORS.split(text) if part.strip()]


def entry_item(values: Mapping[str, str]) -> dict[str, Any]:
    """The form as the [[entries]] table a file would hold (what `parse_entry` reads).
    Only the chosen one of cron and at; the scheme only with layers of it."""
    item: dict[str, Any] = {"id": values["id"].strip(), "title": values["title"].strip(),
                            "channel": values["channel"].strip() or None, "template": values["template"].strip(),
                            "paused": values["paused"] == "on"}
    if values["when"] == "at":
        item["at"] = values["at"].strip()
    else:
        item["cron"] = " ".join(values["cron"].split())
    audience: dict[str, Any] = {name: names(values[name]) for name in LIST_FIELDS if names(values[name])}
    if values["everyone"] == "on":
        audience["everyone"] = True
    if "layers" in audience:
        audience["scheme"] = values["scheme"].strip() or "value"
    item["audience"] = audience
    if names(values["images"]):
        item["images"] = names(values["images"])
    if any(values[f"link_{key}"].strip() for key in ("title", "url", "cover")):
        item["link"] = {key: values[f"link_{key}"].strip() for key in ("title", "url", "cover")}
    return item


def field_of(problem: str) -> str:
    """Which form field a checker's message is about ("cron: …", "audience.tags: …")."""
    head = problem.split(":", 1)[0].strip()
    if head.startswith("link."):
        return head.replace(".", "_") if head.replace(".", "_") in FIELDS else "link_url"
    if head == "link":
        return "link_url"
    if head.startswith("audience."):
        head = head.removeprefix("audience.")
        return head if head in _AUDIENCE_KEYS else "audience"
    if head.startswith("audience"):
        return "audience"
    if problem.startswith("say when"):
        return "when"
    return head if head in FIELDS else GENERAL


def by_field(problems: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for problem in problems:
        found.setdefault(field_of(problem), []).append(problem)
    return found
