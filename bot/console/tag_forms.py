"""The `tags` section as a form: tag groups (name, exclusive, days to expiry) and tag rules of every
kind (keyword, regex, event, behaviour), each with its tag, group, weight and an on/off
switch. Pure functions, the same shape as `bot.console.section_forms`: the section as
form values, the posted form back into the section's document (the one in force with the
form's rows in place, keys the form does not show kept), and the checker's problems back
to their fields. Rule ids travel as hidden values; a new rule gets one made here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.console.calendar_form import names
from bot.settings.model import Settings
from bot.settings.rules import KIND_KEYS

GENERAL = ""
GROUP_FIELDS = ("name", "exclusive", "expire_days")
RULE_FIELDS = ("id", "kind", "tag", "group", "weight", "enabled", "keywords", "match", "pattern", "event", "subject",
               "measure", "days", "count")
ROW_GROUPS = {"groups": GROUP_FIELDS, "tagrules": RULE_FIELDS}
KINDS = ("keyword", "regex", "event", "behaviour")
KIND_LABELS = {"keyword": "关键词", "regex": "正则", "event": "事件", "behaviour": "行为"}
# What each event is, for a person; which list its subject is chosen from (None: it takes none).
EVENT_LABELS = {"added_via_channel": "通过渠道添加店员", "joined_group": "加入客户群", "left_group": "退出客户群",
                "deleted_staff": "删除店员", "placed_order": "下单", "opted_out": "退订营销消息"}
EVENT_SUBJECTS = {"added_via_channel": "channel", "joined_group": "group", "left_group": "group",
                  "placed_order": "store"}
_ROW = re.compile(r"^(groups|tagrules)-(\d{1,3})-(\w+)$")
_INDEXED = re.compile(r"^tags\.(?P<group>groups|rules)\[(?P<index>\d+)\](?:\.(?P<sub>\w+))?$")
_INTEGER = re.compile(r"-?\d{1,9}")
# A rule-level problem from the checker, to the field it is about.
_RULE_PROBLEMS = (("pattern", "pattern"), ("keyword", "keywords"), ("needs event", "event"),
                  ("measure", "measure"))

_FILLED = ("tag", "group", "keywords", "pattern", "event", "days")  # a rule row with none of these is the empty one

Values = dict[str, Any]


def values_of(settings: Settings) -> Values:
    tags = settings.tags

    def rule(r: Any) -> dict[str, str]:
        return {"id": r.id, "kind": r.kind, "tag": r.tag, "group": r.group, "weight": str(r.weight),
                "enabled": "on" if r.enabled else "", "keywords": "、".join(r.keywords), "match": r.match,
                "pattern": r.pattern or "", "event": r.event or "", "subject": r.subject, "measure": r.measure or "",
                "days": "" if r.days is None else str(r.days), "count": str(r.count)}

    return {"groups": [{"name": g.name, "exclusive": "on" if g.exclusive else "",
                        "expire_days": "" if g.expire_days is None else str(g.expire_days)} for g in tags.groups],
            "tagrules": [rule(r) for r in tags.rules]}


def posted_values(form: Mapping[str, Any]) -> Values:
    """Rows in the order of their numbers; a row ticked for removal kept (with "remove")."""
    rows: dict[str, dict[int, dict[str, str]]] = {group: {} for group in ROW_GROUPS}
    for key in form:
        found = _ROW.fullmatch(str(key))
        if found and (found.group(3) in ROW_GROUPS[found.group(1)] or found.group(3) == "remove"):
            rows[found.group(1)].setdefault(int(found.group(2)), {})[found.group(3)] = str(form.get(key, ""))[:2000]
    return {group: [{f: row.get(f, "") for f in (*fields, "remove")} for _n, row in sorted(rows[group].items())]
            for group, fields in ROW_GROUPS.items()}


def _number(text: str) -> int | str | None:
    text = text.strip()
    if not text:
        return None
    return int(text) if _INTEGER.fullmatch(text) else text


def body_of(values: Values, held: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, dict[str, int]], list[str]]:
    """The `tags` document from the form, where each entry came from (group → entry
    index → form row), and the form's own problems ("tagrules-2-tag: required")."""
    body: dict[str, Any] = dict(held or {})
    rows: dict[str, dict[str, int]] = {"groups": {}, "rules": {}}
    problems: list[str] = []
    groups = []
    for n, row in enumerate(values.get("groups", [])):
        if row.get("remove") or not any(row.get(f, "").strip() for f in GROUP_FIELDS):
            continue
        group: dict[str, Any] = {"name": row.get("name", "").strip(), "exclusive": row.get("exclusive") == "on"}
        if (days := _number(row.get("expire_days", ""))) is not None:
            group["expire_days"] = days
        rows["groups"][str(len(groups))] = n
        groups.append(group)
    body["groups"] = groups

    held_rules = {str(r.get("id")): r for r in body.get("rules") or [] if isinstance(r, dict)}
    kept = [(n, row) for n, row in enumerate(values.get("tagrules", []))
            if not row.get("remove") and any(row.get(f, "").strip() for f in _FILLED)]
    taken = set(held_rules) | {row.get("id", "") for _n, row in kept}
    rules = []
    for n, row in kept:
        rule = dict(held_rules.get(row.get("id", "")) or {})
        kind = row.get("kind") if row.get("kind") in KINDS else "keyword"
        if not rule:  # a new rule (an id typed into the hidden field is not trusted)
            number = len(held_rules) + 1
            while f"rule-{number}" in taken:
                number += 1
            taken.add(f"rule-{number}")
            rule = {"id": f"rule-{number}"}
        for keys in KIND_KEYS.values():  # the kind's own keys only: the form says what they are
            for key in keys:
                rule.pop(key, None)
        rule.pop("enabled", None)
        rule |= {"kind": kind, "tag": row.get("tag", "").strip(), "group": row.get("group", "").strip(),
                 "weight": _number(row.get("weight", "")) or 0}
        if row.get("enabled") != "on":
            rule["enabled"] = False
        rule |= _kind_fields(kind, row, n, problems)
        rows["rules"][str(len(rules))] = n
        rules.append(rule)
    body["rules"] = rules
    return body, rows, problems


def _kind_fields(kind: str, row: Mapping[str, str], n: int, problems: list[str]) -> dict[str, Any]:
    if kind == "keyword":
        return {"keywords": names(row.get("keywords", "")), "match": "all" if row.get("match") == "all" else "any"}
    if kind == "regex":
        return {"pattern": row.get("pattern", "").strip()}  # checked as RE2 by the section's own check
    if kind == "event":
        event = row.get("event", "")
        if event not in EVENT_LABELS:
            problems.append(f"tagrules-{n}-event: required")
            return {}
        subject = row.get("subject", "").strip() if event in EVENT_SUBJECTS else ""
        return {"event": event, "subject": subject}
    measure = "silent" if row.get("measure") == "silent" else "messages"
    fields: dict[str, Any] = {"measure": measure, "days": _number(row.get("days", ""))}
    if fields["days"] is None:
        problems.append(f"tagrules-{n}-days: required")
    if measure == "messages":
        fields["count"] = _number(row.get("count", "")) or 1
    return fields


def field_of(problem: str, rows: Mapping[str, Mapping[str, int]]) -> str:
    """The field a problem is about: the form's own, or the checker's
    ("tags.rules[3]: pattern is not a valid regular expression: …", "tags.groups[0].expire_days: …")."""
    key, _sep, message = problem.partition(": ")
    key = key.strip()
    if _ROW.fullmatch(key):
        return key
    found = _INDEXED.fullmatch(key)
    if found is None:
        return GENERAL
    group, index, sub = found.group("group", "index", "sub")
    row = rows.get(group, {}).get(index)
    if row is None:
        return GENERAL
    prefix = "groups" if group == "groups" else "tagrules"
    if sub in ROW_GROUPS[prefix]:
        return f"{prefix}-{row}-{sub}"
    if group == "rules":
        for said, field in _RULE_PROBLEMS:
            if said in message:
                return f"tagrules-{row}-{field}"
        return f"tagrules-{row}-tag"
    return f"groups-{row}-name"


def with_blank_rows(values: Values) -> Values:
    """Every row with each of its fields, and one empty row to add a group or a rule."""
    shown = dict(values)
    for group, fields in ROW_GROUPS.items():
        rows = [{f: str(row.get(f, "")) for f in (*fields, "remove")} for row in values.get(group, [])]
        blank = dict.fromkeys((*fields, "remove"), "")
        if group == "tagrules":
            blank |= {"kind": "keyword", "enabled": "on", "weight": "0", "count": "1"}
        shown[group] = [*rows, blank]
    return shown
