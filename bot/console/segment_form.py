"""The segment builder's form, read into a `SegmentRule`: pure, so bad input is tested
without a server. A field that does not read (a letter where a number goes) is named
in a problem and left out of the rule, never guessed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Protocol

from storage.segments import OPT_OUT, SegmentRule

NUMBERS = {  # field → (label, upper bound)
    "active_days": ("最近互动（天内）", 3650), "silent_days": ("多久没互动（天）", 3650),
    "orders_min": ("订单数至少", 100_000), "orders_max": ("订单数至多", 100_000),
    "spend_min": ("消费至少（元）", 100_000_000), "spend_max": ("消费至多（元）", 100_000_000),
}
SCORE_FIELDS = {"r_min": "r_score", "f_min": "f_score", "m_min": "m_score"}
LISTS = ("tags_any", "tags_all", "tags_none", "stores", "owners")
UNOWNED = "__none__"  # the owners choice "no owner"
MAX_NAMES = 50


class Query(Protocol):
    def get(self, key: str, default: Any = ...) -> Any: ...
    def getall(self, key: str, default: Any = ...) -> list[Any]: ...


def _names(query: Query, key: str) -> tuple[str, ...]:
    values = [str(v).strip()[:64] for v in query.getall(key, [])]
    return tuple(dict.fromkeys(v for v in values if v))[:MAX_NAMES]


def read_rule(query: Query, schemes: Mapping[str, Sequence[str]]) -> tuple[SegmentRule, list[tuple[str, dict[str, Any]]]]:
    """The rule in a query string or form; problems as (phrase, fields) to translate."""
    problems: list[tuple[str, dict[str, Any]]] = []
    layers: dict[str, tuple[str, ...]] = {}
    for scheme, known in schemes.items():
        chosen = _names(query, f"layer.{scheme}")
        if unknown := [c for c in chosen if c not in known]:
            problems.append(("未知的分层：{names}", {"names": "、".join(unknown)}))
        if kept := tuple(c for c in chosen if c in known):
            layers[scheme] = kept
    lists = {key: _names(query, key) for key in LISTS}
    owners = lists.pop("owners")
    numbers: dict[str, int | None] = {}
    for key, (label, top) in NUMBERS.items():
        numbers[key] = _number(str(query.get(key, "")), label, 0, top, problems)
    scores: dict[str, int] = {}
    for key, score in SCORE_FIELDS.items():
        value = _number(str(query.get(key, "")), "RFM 分（1–5）", 1, 5, problems)
        if value is not None:
            scores[score] = value
    opted = str(query.get("opted_out", ""))
    if opted not in OPT_OUT:
        problems.append(("退订状态只能是：不限、已退订、未退订", {}))
        opted = ""
    joined = {key: _day(str(query.get(key, "")), problems) for key in ("joined_from", "joined_to")}
    score_scheme = str(query.get("score_scheme", "")) or ("value" if "value" in schemes else next(iter(schemes), "value"))
    if score_scheme not in schemes:
        problems.append(("未知的分层方案：{names}", {"names": score_scheme}))
        score_scheme = "value"
    rule = SegmentRule(
        layers=layers, **lists, owners=tuple(o for o in owners if o != UNOWNED), unowned=UNOWNED in owners,
        **numbers, scores=scores, score_scheme=score_scheme, opted_out=opted, **joined,
    )
    return rule, problems


def _number(raw: str, label: str, low: int, high: int, problems: list[tuple[str, dict[str, Any]]]) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit() or not low <= int(raw) <= high:
        problems.append(("{label}：请填 {low} 到 {high} 之间的整数", {"label": label, "low": low, "high": high}))
        return None
    return int(raw)


def _day(raw: str, problems: list[tuple[str, dict[str, Any]]]) -> date | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        problems.append(("日期要写成 2026-01-31 这样：{value}", {"value": raw[:20]}))
        return None


def rule_query(rule: SegmentRule) -> list[tuple[str, str]]:
    """The rule back as query parameters (the builder's fields, for links and forms)."""
    pairs: list[tuple[str, str]] = [(f"layer.{s}", layer) for s, layers in rule.layers.items() for layer in layers]
    for key in LISTS:
        pairs += [(key, v) for v in getattr(rule, key)]
    if rule.unowned:
        pairs.append(("owners", UNOWNED))
    pairs += [(key, str(getattr(rule, key))) for key in NUMBERS if getattr(rule, key) is not None]
    pairs += [(key, str(rule.scores[score])) for key, score in SCORE_FIELDS.items() if score in rule.scores]
    if rule.scores:
        pairs.append(("score_scheme", rule.score_scheme))
    if rule.opted_out:
        pairs.append(("opted_out", rule.opted_out))
    pairs += [(key, getattr(rule, key).isoformat()) for key in ("joined_from", "joined_to") if getattr(rule, key)]
    return pairs


def describe(rule: SegmentRule) -> dict[str, Any]:
    """What the form shows as chosen: sets and values by field name."""
    chosen: dict[str, Any] = {key: set(getattr(rule, key)) for key in LISTS}
    if rule.unowned:
        chosen["owners"].add(UNOWNED)
    chosen.update({key: getattr(rule, key) if getattr(rule, key) is not None else "" for key in NUMBERS})
    chosen.update({key: rule.scores.get(score, "") for key, score in SCORE_FIELDS.items()})
    chosen["layers"] = {s: set(v) for s, v in rule.layers.items()}
    chosen.update(opted_out=rule.opted_out, score_scheme=rule.score_scheme,
                  joined_from=rule.joined_from.isoformat() if rule.joined_from else "",
                  joined_to=rule.joined_to.isoformat() if rule.joined_to else "")
    return chosen
