"""The `layers` section as a form: each scheme's layers (label, place from the top) and
each layer's conditions in words: a metric from a labelled list, a comparison and a
value. Pure functions, the same shape as `bot.console.tag_forms`. The conditions are
written back as the TOML writes them (`r_score = ">= 4"`) and checked by the section's
own check (`bot.settings.layers`); keys the form does not show (the RFM window, the
cron lines, known tags) are kept. Layer and scheme names travel as hidden values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.console.calendar_form import names
from bot.settings.layers import DEFAULT_SCHEMES
from bot.settings.model import Settings
from scheduler.layer_rules import INTERACTIONS, parse_condition

GENERAL = ""
INTERACTIONS_METRIC = "interactions"  # interactions_<N>d, N typed in its own box
# The metrics a condition may name, for a person (the order of the list).
METRICS = (
    ("r_score", "R 分（最近下单，1–5）"), ("f_score", "F 分（下单频次，1–5）"), ("m_score", "M 分（消费金额，1–5）"),
    ("recency_days", "最近下单距今天数"), ("frequency", "下单次数"), ("monetary", "消费金额（元）"),
    ("days_since_joining", "入会天数"), ("referrals", "推荐来的会员数"), ("paid_member", "是付费会员"),
    (INTERACTIONS_METRIC, "近几天互动次数"), ("p_alive", "仍是顾客的概率（0–1）"),
    ("orders_90d", "预计 90 天内下单次数"), ("clv_90d", "预计 90 天内消费（元）"),
)
COMPARISONS = ((">=", "至少（≥）"), ("<=", "至多（≤）"), (">", "大于"), ("<", "小于"), ("==", "等于"), ("!=", "不等于"))
TAG_FIELDS = ("tags_all", "tags_any", "tags_none")
_LAYER = re.compile(r"^layer-(\d{1,2})-(\d{1,3})-(\w+)$")
_COND = re.compile(r"^cond-(\d{1,2})-(\d{1,3})-(\d{1,2})-(\w+)$")
_SCHEME = re.compile(r"^scheme-(\d{1,2})-(\w+)$")
_CHECKED = re.compile(r"^layers\.schemes\[(?P<s>\d+)\](?:\.layers\[(?P<l>\d+)\](?:\.(?P<sub>\w+))?)?$")

Values = dict[str, Any]


def _condition(metric: str, written: Any) -> dict[str, str]:
    c = parse_condition(metric, written)
    shown = INTERACTIONS_METRIC if INTERACTIONS.fullmatch(metric) else metric
    days = found.group(1) if (found := INTERACTIONS.fullmatch(metric)) else ""
    value = ("true" if c.value else "false") if isinstance(c.value, bool) else f"{c.value:g}"
    return {"metric": shown, "days": days, "op": c.op, "value": value, "remove": ""}


def values_of(settings: Settings) -> Values:
    schemes = []
    for s in settings.layers.schemes:
        layers = [{"name": layer.name, "at": str(n), "label": layer.label, "order": str(n + 1), "remove": "",
                   **{f: "、".join(getattr(layer, f)) for f in TAG_FIELDS},
                   "conditions": [_condition(m, w) for m, w in layer.when.items()]}
                  for n, layer in enumerate(s.layers)]
        schemes.append({"name": s.name, "label": s.label, "layers": layers})
    return {"schemes": schemes}


def posted_values(form: Mapping[str, Any]) -> Values:
    """The schemes, layers and conditions as posted, in the order of their numbers."""
    schemes: dict[int, dict[str, Any]] = {}
    layers: dict[tuple[int, int], dict[str, Any]] = {}
    conditions: dict[tuple[int, int, int], dict[str, str]] = {}
    for key in form:
        text = str(form.get(key, ""))[:2000]
        if found := _SCHEME.fullmatch(str(key)):
            schemes.setdefault(int(found.group(1)), {})[found.group(2)] = text
        elif found := _LAYER.fullmatch(str(key)):
            layers.setdefault((int(found.group(1)), int(found.group(2))), {})[found.group(3)] = text
        elif found := _COND.fullmatch(str(key)):
            conditions.setdefault((int(found.group(1)), int(found.group(2)), int(found.group(3))), {})[found.group(4)] = text
    shown = []
    for s, scheme in sorted(schemes.items()):
        rows = []
        for (s2, l), layer in sorted(layers.items()):
            if s2 != s:
                continue
            conds = [{f: c.get(f, "") for f in ("metric", "days", "op", "value", "remove")}
                     for (s3, l3, _c), c in sorted(conditions.items()) if (s3, l3) == (s, l)]
            rows.append({f: layer.get(f, "") for f in ("name", "at", "label", "order", "remove", *TAG_FIELDS)}
                        | {"conditions": conds})
        shown.append({"name": scheme.get("name", ""), "label": scheme.get("label", ""), "layers": rows})
    return {"schemes": shown}


def _order(text: str, fallback: int) -> float:
    try:
        return float(text)
    except ValueError:
        return float(fallback)


def body_of(values: Values, held: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, dict[str, str]], list[str]]:
    """The `layers` document from the form; where each entry came from ("s.l" → the
    form's layer prefix, "s.l.metric" → the condition's); the form's own problems."""
    body: dict[str, Any] = dict(held or {})
    if "schemes" not in body:  # the shipped schemes, which a document leaves unsaid
        body["schemes"] = [s.model_dump(mode="json", exclude_defaults=True) for s in DEFAULT_SCHEMES]
    held_schemes = {str(s.get("name")): s for s in body["schemes"] if isinstance(s, dict)}
    rows: dict[str, dict[str, str]] = {"layers": {}, "conditions": {}}
    problems: list[str] = []
    schemes = []
    for s, shown in enumerate(values.get("schemes", [])):
        old = held_schemes.get(shown.get("name", ""))
        if old is None:
            continue  # a scheme is added or removed in expert mode
        old_layers = list(old.get("layers") or [])
        taken = {str(e.get("name")) for e in old_layers}
        placed: list[tuple[float, int, dict[str, Any], dict[str, str]]] = []
        for n, row in enumerate(shown.get("layers", [])):
            at = row.get("at", "")
            filled = row.get("label", "").strip() or any(c.get("metric") for c in row.get("conditions", [])) or \
                any(row.get(f, "").strip() for f in TAG_FIELDS)
            if row.get("remove") or not (filled or at):
                continue
            if not at and not row.get("label", "").strip():  # operators know a layer by its label
                problems.append(f"layer-{s}-{n}-label: required")
            entry = dict(old_layers[int(at)]) if at.isdigit() and int(at) < len(old_layers) else {}
            if not entry:  # a new layer: a name of its own
                number = len(taken) + 1
                while f"layer-{number}" in taken:
                    number += 1
                taken.add(f"layer-{number}")
                entry = {"name": f"layer-{number}"}
            entry["label"] = row.get("label", "").strip()
            for f in TAG_FIELDS:
                entry.pop(f, None)
                if words := names(row.get(f, "")):
                    entry[f] = words
            entry["when"], fields = _when(row.get("conditions", []), f"cond-{s}-{n}", problems,
                                          dict(entry.get("when") or {}))
            placed.append((_order(row.get("order", ""), n + 1), n, entry, fields))
        placed.sort(key=lambda item: (item[0], item[1]))
        for index, (_place, n, _entry, fields) in enumerate(placed):  # the checker counts in the saved order
            rows["layers"][f"{len(schemes)}.{index}"] = f"layer-{s}-{n}"
            rows["conditions"] |= {f"{len(schemes)}.{index}.{metric}": field for metric, field in fields.items()}
        schemes.append({**old, "label": shown.get("label", "").strip(), "layers": [e for _p, _n, e, _f in placed]})
    body["schemes"] = schemes + [s for name, s in held_schemes.items()
                                 if name not in {x.get("name") for x in values.get("schemes", [])}]
    return body, rows, problems


def _same(metric: str, held: Any, written: str) -> bool:
    try:
        return parse_condition(metric, held) == parse_condition(metric, written)
    except ValueError:
        return False


def _when(conditions: list[Mapping[str, str]], prefix: str, problems: list[str],
          held: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """`metric → "op value"` as the TOML writes it (a condition left as it was, as it was
    written: `frequency = 0` stays so), and the form row each metric came from."""
    when: dict[str, Any] = {}
    fields: dict[str, str] = {}
    for c, row in enumerate(conditions):
        field = f"{prefix}-{c}"
        metric, value = row.get("metric", ""), row.get("value", "").strip()
        if row.get("remove") or not metric:
            continue
        if metric == INTERACTIONS_METRIC:
            days = row.get("days", "").strip()
            if not days.isdigit() or not 1 <= int(days) <= 9999:
                problems.append(f"{field}-days: required: days from 1 to 9999")
                continue
            metric = f"interactions_{int(days)}d"
        if not value:
            problems.append(f"{field}-value: required")
            continue
        if metric in when:
            problems.append(f"{field}-metric: used twice in one layer")
            continue
        written = f"{row.get('op', '==')} {value}"
        when[metric] = held[metric] if metric in held and _same(metric, held[metric], written) else written
        fields[metric] = field
    return when, fields


def field_of(problem: str, rows: Mapping[str, Mapping[str, str]]) -> str:
    """The field a problem is about: the form's own, or the checker's
    ("layers.schemes[0].layers[2].when: r_score: '>= x' is not a comparison …")."""
    key, _sep, message = problem.partition(": ")
    key = key.strip()
    if _LAYER.fullmatch(key) or _COND.fullmatch(key):
        return key
    found = _CHECKED.fullmatch(key)
    if found is None or found.group("l") is None:
        return GENERAL
    s, l, sub = found.group("s", "l", "sub")
    if sub == "when":
        metric = message.partition(":")[0].strip().strip("'")
        if (field := rows.get("conditions", {}).get(f"{s}.{l}.{metric}")) is not None:
            return f"{field}-value"
    layer = rows.get("layers", {}).get(f"{s}.{l}")
    if layer is None:
        return GENERAL
    return f"{layer}-{sub}" if sub in ("label", *TAG_FIELDS) else f"{layer}-label"


def with_blank_rows(values: Values) -> Values:
    """One empty condition under each layer and one empty layer under each scheme, to add."""
    blank_condition = {"metric": "", "days": "", "op": ">=", "value": "", "remove": ""}
    schemes = []
    for scheme in values.get("schemes", []):
        layers = [{**layer, "conditions": [*layer.get("conditions", []), dict(blank_condition)]}
                  for layer in scheme.get("layers", [])]
        layers.append({"name": "", "at": "", "label": "", "order": str(len(layers) + 1), "remove": "",
                       **dict.fromkeys(TAG_FIELDS, ""), "conditions": [dict(blank_condition)]})
        schemes.append({**scheme, "layers": layers})
    return {"schemes": schemes}
