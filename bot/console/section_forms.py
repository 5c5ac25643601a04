"""Per-field forms for the settings sections operators touch most (persona, FAQ, hand-off
and opt-out words, the delivery policy, care by layer), as plain functions: a section shown as form
values, what the operator typed back into the section's document (the same dict the
TOML editor would make), and the checker's problems back to the fields they are about.

The form never judges a value by rules of its own beyond "this box is required" (and a
share typed in per cent): the document goes through `siyu check`'s checks like any other edit. Keys the form does not
show (reply_template, route_concurrency, an FAQ entry's pattern, festivals…) are kept from the
document in force; ids (FAQ ids, layer names, staff userids) travel as hidden values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.console import layer_forms, tag_forms
from bot.console.calendar_form import names
from bot.settings.model import Settings

FORMS = ("persona", "replies", "handoff", "opt_out", "delivery", "care", "tags", "layers")
OWN_MODULES = {"tags": tag_forms, "layers": layer_forms}  # sections whose rows nest or differ: forms of their own
GENERAL = ""  # a problem about no one field of the form
ROWS: dict[str, tuple[str, ...]] = {  # row groups: each row's fields
    "tips": ("tag", "text"),
    "faq": ("id", "keywords", "match", "answer"),
    "caps": ("layer", "cap"),
    "rules": ("which", "layer", "own", "message", "task", "gift", "occasions", "holdout"),  # care per layer
}
SCALARS: dict[str, tuple[str, ...]] = {
    "persona": ("name", "title", "signature", "default_line"),
    "replies": ("max_replies", "per_minutes"),
    "handoff": ("keywords", "angry_words", "question_markers", "unanswered", "last_messages", "default_staff"),
    "opt_out": ("stop_words", "resume_words"),
    "delivery": ("quiet_hours", "quiet_start", "quiet_end", "cap_scheme", "default_weekly_cap"),
    "care": ("scheme", "send_time", "task_days_ahead", "winback_days"),
}
GROUPS: dict[str, tuple[str, ...]] = {"persona": ("tips",), "replies": ("faq",), "delivery": ("caps",), "care": ("rules",)}
WORD_LISTS = frozenset({"keywords", "angry_words", "question_markers", "stop_words", "resume_words"})
NUMBERS = frozenset({"max_replies", "per_minutes", "last_messages", "default_weekly_cap", "task_days_ahead",
                     "winback_days"})
RULE_FLAGS = ("message", "task", "gift")
FLAGS = frozenset({"quiet_hours"})
_ROW_FIELD = re.compile(r"^(tips|faq|caps|rules)-(\d{1,3})-(\w+)$")
_ITEM = re.compile(r"^(?P<group>\w+)(?:\[(?P<index>\d+)\]|\.(?P<key>[^.\[]+))?(?:\.(?P<sub>\w+))?")
_INTEGER = re.compile(r"-?\d{1,9}")
_DECIMAL = re.compile(r"\d{1,3}(?:\.\d{1,4})?")

Source = Callable[[str], "str | None"]  # a template's text by name (None: no such template)
Values = dict[str, Any]  # field → text; a row group → list of rows (field → text)


@dataclass
class Built:
    """A form's values as the section's document, and where each entry came from."""

    body: dict[str, Any]
    texts: dict[str, str] = field(default_factory=dict)  # message texts to save with it (FAQ answers)
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # group → entry key (index or name) → form row
    problems: list[str] = field(default_factory=list)  # the form's own, as "field-id: what"


# -- the section in force, as the form shows it ----------------------------------------------

def values_of(name: str, settings: Settings, source: Source) -> Values:
    if name in OWN_MODULES:
        return OWN_MODULES[name].values_of(settings)
    if name == "persona":
        p = settings.persona
        return {"name": p.name, "title": p.title, "signature": p.signature, "default_line": p.default_line,
                "tips": [{"tag": tag, "text": text} for tag, text in p.tips.items()]}
    if name == "replies":
        r = settings.replies
        return {"max_replies": str(r.max_replies), "per_minutes": str(r.per_minutes),
                "faq": [{"id": f.id, "keywords": "、".join(f.keywords), "match": f.match,
                         "answer": source(f.template) or ""} for f in r.faq]}
    if name == "handoff":
        h = settings.handoff
        return {"keywords": "\n".join(h.keywords), "angry_words": "\n".join(h.angry_words),
                "question_markers": "\n".join(h.question_markers), "unanswered": h.unanswered,
                "last_messages": str(h.last_messages), "default_staff": h.default_staff or ""}
    if name == "opt_out":
        o = settings.opt_out
        return {"stop_words": "\n".join(o.stop_words), "resume_words": "\n".join(o.resume_words)}
    if name == "delivery":
        d = settings.delivery
        scheme = settings.layers.scheme(d.cap_scheme)
        layers = list(dict.fromkeys(scheme.order())) if scheme is not None else []
        layers += [layer for layer in d.weekly_caps if layer not in layers]
        return {"quiet_hours": "on" if d.quiet_hours else "", "quiet_start": d.quiet_start, "quiet_end": d.quiet_end,
                "cap_scheme": d.cap_scheme,
                "default_weekly_cap": "" if d.default_weekly_cap is None else str(d.default_weekly_cap),
                "caps": [{"layer": layer, "cap": str(d.weekly_caps.get(layer, ""))} for layer in layers]}
    if name == "care":
        return _care_values(settings)
    raise KeyError(name)


def _care_values(settings: Settings) -> Values:
    """Care by layer of its scheme, top first: the top layer's rule, each other layer's
    own rule where it has one (else it follows the rule for every other layer), then that."""
    care = settings.care
    scheme = settings.layers.scheme(care.scheme)
    order = scheme.order() if scheme is not None else []

    def row(which: str, layer: str, own: bool, rule: Any) -> dict[str, str]:
        return {"which": which, "layer": layer, "own": "on" if own else "", "occasions": ",".join(rule.occasions),
                "holdout": f"{rule.holdout * 100:g}", **{f: "on" if getattr(rule, f) else "" for f in RULE_FLAGS}}

    # The top layer's own entry in care.layers, if any, is what the scan uses for it.
    rows = [row("top", order[0], True, care.layers.get(order[0], care.top_layer))] if order else []
    rows += [row("layer", layer, layer in care.layers, care.layers.get(layer, care.other_layers)) for layer in order[1:]]
    rows.append(row("other", "", True, care.other_layers))
    return {"scheme": care.scheme, "send_time": care.send_time, "task_days_ahead": str(care.task_days_ahead),
            "winback_days": str(care.winback_days), "rules": rows}


# -- what the operator typed --------------------------------------------------------------------

def posted_values(name: str, form: Mapping[str, Any]) -> Values:
    """A posted form as values (a ticked box: "on"); rows in the order of their numbers,
    a row ticked for removal kept (with "remove") so a failed check shows it as it was."""
    if name in OWN_MODULES:
        return OWN_MODULES[name].posted_values(form)
    values: Values = {}
    for key in SCALARS[name]:
        raw = str(form.get(key, ""))[:20000]
        values[key] = ("on" if raw in ("on", "true", "1") else "") if key in FLAGS else raw
    for group in GROUPS.get(name, ()):
        rows: dict[int, dict[str, str]] = {}
        for key in form:
            found = _ROW_FIELD.fullmatch(str(key))
            if found and found.group(1) == group and (found.group(3) in ROWS[group] or found.group(3) == "remove"):
                many = form.getall(key) if found.group(3) == "occasions" and hasattr(form, "getall") else [form.get(key, "")]
                rows.setdefault(int(found.group(2)), {})[found.group(3)] = ",".join(map(str, many))[:20000]
        values[group] = [{f: row.get(f, "") for f in (*ROWS[group], "remove")} for _n, row in sorted(rows.items())]
    return values


def _number(text: str) -> int | str | None:
    """A whole number typed in a box (None when blank); anything else as typed, for the
    section's check to say what it should be."""
    text = text.strip()
    if not text:
        return None
    return int(text) if _INTEGER.fullmatch(text) else text


def _blank(row: Mapping[str, str], fields: tuple[str, ...]) -> bool:
    return not any(row.get(f, "").strip() for f in fields)


def body_of(name: str, values: Values, held: Mapping[str, Any] | None, source: Source) -> Built:
    """The section's document: the one in force (`held`) with the form's fields in place."""
    if name in OWN_MODULES:
        body, rows, problems = OWN_MODULES[name].body_of(values, held)
        return Built(body, rows=rows, problems=problems)  # type: ignore[arg-type]
    body: dict[str, Any] = dict(held or {})
    built = Built(body)
    for key in SCALARS[name]:
        text = values.get(key, "")
        if key in WORD_LISTS:
            body[key] = names(text)
        elif key in FLAGS:
            body[key] = text == "on"
        elif key in NUMBERS:
            body[key] = _number(text)
        else:
            body[key] = text.strip()
    if name == "persona":
        _tips(values, built)
    elif name == "replies":
        _faq(values, built, source)
    elif name == "handoff" and not body["default_staff"]:
        body.pop("default_staff")  # nobody: the default
    elif name == "delivery":
        if body["default_weekly_cap"] is None:  # TOML cannot say "none": export and expert mode would lose it
            built.problems.append("default_weekly_cap: required")
        caps = dict(body.get("weekly_caps") or {})
        built.rows["caps"] = {}
        for n, row in enumerate(values.get("caps", [])):
            layer = row.get("layer", "").strip()
            if not layer:
                continue
            caps.pop(layer, None)
            if row.get("cap", "").strip():
                caps[layer] = _number(row["cap"])
            built.rows["caps"][layer] = n
        body["weekly_caps"] = caps
    elif name == "care":
        _care_rules(values, built)
    return built


def _care_rules(values: Values, built: Built) -> None:
    layers: dict[str, Any] = {}
    built.rows["rules"] = {}
    for n, row in enumerate(values.get("rules", [])):
        which, layer = row.get("which", ""), row.get("layer", "").strip()
        key = {"top": "top_layer", "other": "other_layers"}.get(which, f"layers.{layer}")
        if which not in ("top", "other", "layer") or which == "layer" and (not layer or not row.get("own")):
            continue  # it follows the rule for every other layer
        holdout = row.get("holdout", "").strip() or "0"
        if not _DECIMAL.fullmatch(holdout) or float(holdout) > 50:
            built.problems.append(f"rules-{n}-holdout: must be a per cent from 0 to 50")
        rule = {"occasions": [o for o in row.get("occasions", "").split(",") if o],
                "holdout": float(holdout) / 100 if _DECIMAL.fullmatch(holdout) else 0.0,
                **{f: row.get(f) == "on" for f in RULE_FLAGS}}
        if which == "layer":
            layers[layer] = rule
        else:
            built.body[key] = rule
        built.rows["rules"][key] = n
    built.body["layers"] = layers


def _tips(values: Values, built: Built) -> None:
    tips: dict[str, str] = {}
    built.rows["tips"] = {}
    for n, row in enumerate(values.get("tips", [])):
        if row.get("remove") or _blank(row, ROWS["tips"]):
            continue
        tag = row.get("tag", "").strip()
        if not tag:
            built.problems.append(f"tips-{n}-tag: required")
        elif tag in tips:
            built.problems.append(f"tips-{n}-tag: duplicate tag: {tag}")
        else:
            tips[tag] = row.get("text", "").strip()
            built.rows["tips"][tag] = n
    built.body["tips"] = tips


def _faq(values: Values, built: Built, source: Source) -> None:
    """FAQ entries: question words and the answer's text. An entry's answer stays in the
    template it names, its text saved as a message text when changed; a new entry gets
    a template of its own, faq/<id>.txt.j2."""
    held = {str(e.get("id")): e for e in built.body.get("faq") or [] if isinstance(e, dict)}
    rows = [(n, row) for n, row in enumerate(values.get("faq", []))
            if not row.get("remove") and not _blank(row, ("keywords", "answer"))]
    taken = {row.get("id", "") for _n, row in rows} | set(held)
    entries, built.rows["faq"] = [], {}
    for n, row in rows:
        entry = dict(held.get(row.get("id", "")) or {})
        if not entry:  # a new question (an id typed into the hidden field is not trusted)
            number = len(held) + 1
            while f"faq-{number}" in taken:
                number += 1
            taken.add(f"faq-{number}")
            entry = {"id": f"faq-{number}", "template": f"faq/faq-{number}.txt.j2"}
        entry["keywords"] = names(row.get("keywords", ""))
        entry["match"] = "all" if row.get("match") == "all" else "any"
        answer = row.get("answer", "").replace("\r\n", "\n")
        if not answer.strip():
            built.problems.append(f"faq-{n}-answer: required")
        elif answer.strip() != (source(entry["template"]) or "").strip():
            built.texts[entry["template"]] = answer
        built.rows["faq"][str(len(entries))] = n
        entries.append(entry)
    built.body["faq"] = entries


# -- problems back to their fields --------------------------------------------------------------

def field_of(name: str, problem: str, rows: Mapping[str, Mapping[str, int]]) -> str:
    """The form field a problem is about: the form's own ("faq-2-answer: …") or the
    checker's ("replies.faq[1].template: …", "delivery.weekly_caps.super: …")."""
    if name in OWN_MODULES:
        return OWN_MODULES[name].field_of(problem, rows)  # type: ignore[arg-type]
    key = problem.partition(": ")[0].strip()
    if _ROW_FIELD.fullmatch(key) or key in SCALARS[name]:
        return key
    if not key.startswith(f"{name}."):
        return GENERAL
    found = _ITEM.match(key.removeprefix(f"{name}."))
    if found is None:
        return GENERAL
    item, index, entry, sub = found.group("group", "index", "key", "sub")
    if item in SCALARS[name]:
        return item
    if name == "replies" and item == "faq" and index is not None and index in rows.get("faq", {}):
        row = rows["faq"][index]
        return f"faq-{row}-answer" if sub == "template" else f"faq-{row}-keywords"
    if name == "persona" and item == "tips" and entry in rows.get("tips", {}):
        return f"tips-{rows['tips'][entry]}-text"
    if name == "delivery" and item == "weekly_caps" and entry in rows.get("caps", {}):
        return f"caps-{rows['caps'][entry]}-cap"
    if name == "care" and item in ("top_layer", "other_layers", "layers"):
        where, what = (item, entry) if item != "layers" else (f"layers.{entry}", sub)
        if where in rows.get("rules", {}):
            return f"rules-{rows['rules'][where]}-{what if what in ('holdout', 'occasions') else 'occasions'}"
    return GENERAL


def with_blank_rows(name: str, values: Values) -> Values:
    """Values as the page shows them: every row with each of its fields, and one empty
    row to add to each list operators grow (the caps have a row per layer already)."""
    if name in OWN_MODULES:
        return OWN_MODULES[name].with_blank_rows(values)
    shown = dict(values)
    for group in GROUPS.get(name, ()):
        fields = (*ROWS[group], "remove")
        rows = [{f: str(row.get(f, "")) for f in fields} for row in values.get(group, [])]
        shown[group] = rows if group in ("caps", "rules") else [*rows, dict.fromkeys(fields, "")]
    return shown
