"""The calendar entry form, as plain functions: what the operator typed (text per field)
to the entry a calendar file would hold, and the checker's problems back to the fields
they are about. Checking itself is `scheduler.calendar.parse_entry`, the same as
`siyu calendar load`: the console never judges an entry by rules of its own."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.calendar import EntrySpec

MASS_LINK = ("title", "url", "desc", "picurl")  # a mass send's link card
MINI = ("appid", "page", "title", "cover")  # ...and its mini-program card
TEXT_FIELDS = ("id", "title", "when", "cron", "at", "channel", "template", "scheme",
               "images", "link_title", "link_url", "link_cover",  # these four: a Moments post's
               *(f"mass_link_{k}" for k in MASS_LINK), "mass_images",  # a mass send's attachments
               *(f"mini_{k}" for k in MINI),
               "repeat", "time", "weekday", "monthday", "message")  # a schedule in words; the message's text
LIST_FIELDS = ("layers", "lifecycle", "tags", "exclude_tags", "stores")
FLAG_FIELDS = ("everyone", "paused")
FIELDS = (*TEXT_FIELDS, *LIST_FIELDS, *FLAG_FIELDS)
GENERAL = "entry"  # problems about no one field
_SEPARATORS = re.compile(r"[,，、;；\n]+")
_LOCAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")
_AUDIENCE_KEYS = {"scheme", *LIST_FIELDS, "everyone"}


REPEATS = ("daily", "weekly", "monthly", "cron")  # 每天 / 每周 / 每月 / cron for experts
CRON_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # APScheduler's names (its 0 is Monday)
_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_SIMPLE = re.compile(r"(\d{1,2}) (\d{1,2}) (\*|\d{1,2}) \* (\*|mon|tue|wed|thu|fri|sat|sun)")


def blank_values() -> dict[str, str]:
    return {name: "" for name in FIELDS} | {"when": "cron", "scheme": "value", "repeat": "weekly", "time": "10:00",
                                            "weekday": "fri", "monthday": "1"}


def schedule_cron(values: Mapping[str, str]) -> tuple[str | None, dict[str, list[str]]]:
    """The cron line a schedule in words stands for (None: the expert's own line stands),
    or the problems of its fields."""
    repeat = values.get("repeat", "cron")
    if values.get("when") == "at" or repeat not in REPEATS[:3]:
        return None, {}
    problems: dict[str, list[str]] = {}
    clock = _CLOCK.fullmatch(values.get("time", "").strip())
    if clock is None:
        problems["time"] = ["时间请写成 10:00 这样"]
    day = values.get("monthday", "").strip()
    if repeat == "monthly" and not (day.isdigit() and 1 <= int(day) <= 31):
        problems["monthday"] = ["请填 1 到 31 之间的日子"]
    weekday = values.get("weekday", "")
    if repeat == "weekly" and weekday not in CRON_DAYS:
        problems["weekday"] = ["请选择星期几"]
    if problems or clock is None:
        return "", problems
    minute, hour = int(clock.group(2)), int(clock.group(1))
    return {"daily": f"{minute} {hour} * * *", "weekly": f"{minute} {hour} * * {weekday}",
            "monthly": f"{minute} {hour} {int(day) if day.isdigit() else 1} * *"}[repeat], {}


def schedule_of(cron: str) -> dict[str, str]:
    """A cron line as the schedule in words, where it is one (else: an expert's line)."""
    found = _SIMPLE.fullmatch(" ".join(cron.split()))
    if found is None or int(found.group(1)) > 59 or int(found.group(2)) > 23:
        return {"repeat": "cron"}
    minute, hour, day, weekday = found.groups()
    clock = f"{int(hour):02d}:{int(minute):02d}"
    if day == "*" and weekday == "*":
        return {"repeat": "daily", "time": clock}
    if day == "*":
        return {"repeat": "weekly", "time": clock, "weekday": weekday}
    if weekday == "*":
        return {"repeat": "monthly", "time": clock, "monthday": str(int(day))}
    return {"repeat": "cron"}


def with_labels(values: dict[str, str], layer_labels: Mapping[str, Mapping[str, str]],
                stores: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Ids shown as the labels operators know: layers by their label, stores by name."""
    shown = dict(values)
    scheme = layer_labels.get(values.get("scheme", ""), {})
    shown["layers"] = ", ".join(scheme.get(n, n) for n in names(values.get("layers", "")))
    shown["lifecycle"] = ", ".join(layer_labels.get("lifecycle", {}).get(n, n) for n in names(values.get("lifecycle", "")))
    by_code = dict(stores)
    shown["stores"] = ", ".join(by_code.get(c, c) for c in names(values.get("stores", "")))
    return shown


def with_ids(values: dict[str, str], layer_labels: Mapping[str, Mapping[str, str]],
             stores: Sequence[tuple[str, str]]) -> dict[str, str]:
    """What the operator typed, labels and names turned into the ids the checker reads
    (an id typed as such stays; anything unknown is left for the checker to name)."""
    def ids(text: str, labels: Mapping[str, str]) -> str:
        back = {label: name for name, label in labels.items()}
        return ", ".join(back.get(n, n) for n in names(text))

    known = dict(values)
    known["layers"] = ids(values.get("layers", ""), layer_labels.get(values.get("scheme", ""), {}))
    known["lifecycle"] = ids(values.get("lifecycle", ""), layer_labels.get("lifecycle", {}))
    known["stores"] = ids(values.get("stores", ""), dict(stores))
    return known


def form_values(raw: Mapping[str, Any]) -> dict[str, str]:
    """The fields of a posted form or JSON body, as text (a ticked box: "on")."""
    values = blank_values()
    for name in TEXT_FIELDS + LIST_FIELDS:
        if name in raw and raw[name] is not None:
            values[name] = str(raw[name])[:2000]
    for name in FLAG_FIELDS:
        values[name] = "on" if raw.get(name) in ("on", "true", "1", True) else ""
    values["when"] = "at" if values["when"] == "at" else "cron"
    if "repeat" not in raw:  # a client that knows only cron (the expert's line)
        values["repeat"] = "cron"
    values["repeat"] = values["repeat"] if values["repeat"] in REPEATS else "cron"
    cron, _problems = schedule_cron(values)
    if cron is not None:
        values["cron"] = cron
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
    if entry.cron is not None:
        values |= schedule_of(entry.cron)
    values["images"] = ", ".join(entry.images)
    if entry.link is not None:
        values |= {"link_title": entry.link.title, "link_url": entry.link.url, "link_cover": entry.link.cover}
    mass = entry.mass.to_json()
    values |= {f"mass_link_{k}": v for k, v in (mass.get("link") or {}).items()}
    values |= {f"mini_{k}": v for k, v in (mass.get("miniprogram") or {}).items()}
    values["mass_images"] = ", ".join(entry.mass.images)
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
    attachments: dict[str, Any] = {}
    if any(values[f"mass_link_{key}"].strip() for key in MASS_LINK):
        attachments["link"] = {key: values[f"mass_link_{key}"].strip() for key in MASS_LINK
                               if values[f"mass_link_{key}"].strip()}
    if names(values["mass_images"]):
        attachments["images"] = names(values["mass_images"])
    if any(values[f"mini_{key}"].strip() for key in MINI):
        attachments["miniprogram"] = {key: values[f"mini_{key}"].strip() for key in MINI}
    if attachments:
        item["attachments"] = attachments
    return item


def field_of(problem: str) -> str:
    """Which form field a checker's message is about ("cron: …", "audience.tags: …")."""
    head = problem.split(":", 1)[0].strip()
    if head.startswith("attachments."):  # a mass send's: attachments.link.title → mass_link_title
        parts = head.split(".")
        name = {"link": "mass_link_", "miniprogram": "mini_", "images": "mass_images"}.get(parts[1], "")
        name = name + (parts[2] if len(parts) > 2 and name.endswith("_") else "") if name else ""
        return name if name in FIELDS else "attachments"
    if head == "attachments":
        return "attachments"
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
