"""Tag rules and layer schemes in force, with how many members each reaches now.

Keyword rules are edited here (tag, group, words), a new one added; every other kind of
rule, the groups and the schemes in the settings editor. A change is a new version of
the `tags` document, checked as `siyu check` checks the file, in force within seconds in
every process. Counts are SQL (one GROUP BY for every rule, one per scheme).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.console.calendar_form import names
from bot.console.config_page import held_bodies, problems_with, store_change
from bot.console.config_words import spoken_all
from bot.console.i18n import translator
from bot.console.keys import LANGUAGE, operators_only
from bot.console.render import render
from bot.console.tag_forms import KIND_LABELS
from bot.settings.layers import SchemeSettings
from bot.settings.rules import TagGroupSettings, TagRuleSettings
from bot.shared.keys import SESSIONS
from bot.shared.live_config import live
from bot.shared.layer_summaries import ordered_layers
from scheduler.layer_rules import INTERACTIONS, Condition, Layer
from storage.engagement import NO_LAYER, layer_counts
from storage.models import utcnow
from storage.rule_counts import TagSourceCount, last_layer_runs, tag_source_counts

RECENT_DAYS = 7
METRIC_LABELS = {
    "recency_days": "最近下单距今天数", "frequency": "下单次数", "monetary": "消费金额（元）",
    "r_score": "R 分（最近下单）", "f_score": "F 分（下单频次）", "m_score": "M 分（消费金额）",
    "days_since_joining": "入会天数", "referrals": "推荐来的会员数",
}
SYMBOLS = {">=": "≥", "<=": "≤", ">": ">", "<": "<", "==": "=", "!=": "≠"}


def add_routes(console: web.Application) -> None:
    console.router.add_get("/rules", rules_page)
    console.router.add_post("/rules/keywords", save_keyword_rule)


@dataclass(frozen=True, slots=True)
class Reading:
    """One condition, for people: a Chinese phrase translated in the template with its
    fields, then a comparison that reads the same in every language."""

    phrase: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    op: str = ""
    value: str = ""


# -- tag rules ---------------------------------------------------------------------------

def rule_reading(rule: TagRuleSettings) -> Reading:
    """What a rule matches, in words."""
    words = "、".join(rule.keywords)
    match rule.kind:
        case "keyword":
            return Reading("含全部关键词：{words}" if rule.match == "all" else "含任一关键词：{words}", {"words": words})
        case "regex":
            return Reading("匹配正则：{pattern}", {"pattern": rule.pattern or ""})
        case "behaviour":
            if rule.measure == "silent":
                return Reading("{days} 天没有任何互动", {"days": rule.days})
            return Reading("{days} 天内发来至少 {count} 条消息", {"days": rule.days, "count": rule.count})
    return _event_reading(rule.event or "", rule.subject)


def _event_reading(event: str, subject: str) -> Reading:
    named = {
        "added_via_channel": ("通过渠道「{subject}」添加店员", "通过任意渠道添加店员"),
        "joined_group": ("加入客户群「{subject}」", "加入任意客户群"),
        "left_group": ("退出客户群「{subject}」", "退出任意客户群"),
    }
    if event in named:
        some, any_ = named[event]
        return Reading(some, {"subject": subject}) if subject else Reading(any_)
    plain = {"deleted_staff": "删除店员", "placed_order": "下单", "opted_out": "退订营销消息"}
    return Reading(plain.get(event, event), value=f"（{subject}）" if subject else "")


@dataclass(frozen=True, slots=True)
class RuleLine:
    rule: TagRuleSettings
    reading: Reading
    group: TagGroupSettings | None  # the group's settings, None when it has none
    tagged: int  # members carrying the tag now, whoever set it
    given: int  # of those, the tag this rule gave
    recent: int  # of those, hit in the last RECENT_DAYS days


def rule_lines(rules: Sequence[TagRuleSettings], groups: Sequence[TagGroupSettings],
               counts: Iterable[TagSourceCount]) -> list[RuleLine]:
    """One line per rule, the counts split out of the grouped rows."""
    tagged: dict[tuple[str, str], int] = {}
    by_rule: dict[tuple[str, str, str], TagSourceCount] = {}
    for c in counts:
        tagged[(c.name, c.group)] = tagged.get((c.name, c.group), 0) + c.members
        if c.source == "rule" and c.source_ref:
            by_rule[(c.name, c.group, c.source_ref)] = c
    settings = {g.name: g for g in groups}
    lines = []
    for rule in rules:
        own = by_rule.get((rule.tag, rule.group, rule.id))
        lines.append(RuleLine(rule, rule_reading(rule), settings.get(rule.group), tagged.get((rule.tag, rule.group), 0),
                              own.members if own else 0, own.recent if own else 0))
    return lines


# -- layer schemes -----------------------------------------------------------------------

def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def condition_reading(c: Condition) -> Reading:
    if c.metric == "paid_member":
        yes = (c.op == "==") == bool(c.value)
        return Reading("是付费会员" if yes else "不是付费会员")
    if found := INTERACTIONS.fullmatch(c.metric):
        label = Reading("近 {n} 天互动次数", {"n": int(found.group(1))})
    else:
        label = Reading(METRIC_LABELS.get(c.metric, c.metric))
    value = str(c.value).lower() if isinstance(c.value, bool) else _number(c.value)
    return Reading(label.phrase, label.fields, SYMBOLS.get(c.op, c.op), value)


def layer_readings(layer: Layer) -> list[Reading]:
    """Every condition of one layer entry (all must hold); a catch-all says so."""
    readings = [condition_reading(c) for c in layer.conditions]
    for phrase, tags in (("有全部标签：{tags}", layer.tags_all), ("有任一标签：{tags}", layer.tags_any),
                         ("没有标签：{tags}", layer.tags_none)):
        if tags:
            readings.append(Reading(phrase, {"tags": "、".join(tags)}))
    return readings or [Reading("其余所有会员")]


@dataclass(frozen=True, slots=True)
class LayerLine:
    name: str
    label: str
    alternatives: list[list[Reading]]  # any one holds; empty for a layer the scheme no longer names
    members: int
    share: float  # of the scheme's current members, 0..1


@dataclass(frozen=True, slots=True)
class SchemeView:
    scheme: SchemeSettings
    layers: list[LayerLine]
    members: int
    ran_at: datetime | None  # local time of the last computation


def scheme_view(settings: SchemeSettings, counts: Mapping[str, int], ran_at: datetime | None) -> SchemeView:
    """The scheme's layers top first (a name listed twice is one layer with two ways in),
    then layers members still hold but the scheme no longer names, then the unlayered."""
    scheme = settings.scheme()
    ways: dict[str, list[list[Reading]]] = {}
    for layer in scheme.layers:
        ways.setdefault(layer.name, []).append(layer_readings(layer))
    labels = settings.layer_labels()
    total = sum(counts.values())
    lines = [
        LayerLine(name, labels.get(name, ""), ways.get(name, []), counts.get(name, 0),
                  counts.get(name, 0) / total if total else 0.0)
        for name in ordered_layers(scheme.order(), list(counts))
    ]
    return SchemeView(settings, lines, total, ran_at)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)  # stored as naive UTC


# -- the page ----------------------------------------------------------------------------

async def rules_page(request: web.Request, problems: Sequence[str] = (), typed: Mapping[str, str] | None = None,
                     http_status: int = 200) -> web.Response:
    operators_only(request)
    settings = live(request).settings
    tags = settings.tags
    since = utcnow() - timedelta(days=RECENT_DAYS)
    async with request.config_dict[SESSIONS]() as session:
        counts = await tag_source_counts(session, {(r.tag, r.group) for r in tags.rules}, since)
        runs = await last_layer_runs(session)
        pyramids = {s.name: await layer_counts(session, s.name) for s in settings.layers.schemes}
    schemes = [
        scheme_view(s, pyramids[s.name], _aware(runs[s.name]).astimezone(settings.zone) if s.name in runs else None)
        for s in settings.layers.schemes
    ]
    return render(
        request, "rules.html", http_status=http_status, lines=rule_lines(tags.rules, tags.groups, counts), groups=tags.groups,
        schemes=schemes, kinds=KIND_LABELS, no_layer=NO_LAYER, recent_days=RECENT_DAYS,
        rules_file=Path(tags.rules_file).name if tags.rules_file else None, rfm=settings.layers.rfm,
        problems=spoken_all(problems, translator(request.get(LANGUAGE, "zh"))), typed=typed or {},
        notice=request.query.get("notice") == "saved", saved_rule=request.query.get("rule", ""),
    )


# -- editing a keyword rule --------------------------------------------------------------

def keyword_rule_body(rules: list[dict[str, Any]], rule_id: str, tag: str, group: str, words: list[str],
                      match: str) -> tuple[list[dict[str, Any]], str]:
    """The rules with one keyword rule changed (its id given) or added (a new id made
    from the others), and that rule's id."""
    fields = {"tag": tag, "group": group, "keywords": words, "match": "all" if match == "all" else "any"}
    if rule_id:
        return [({**r, **fields} if r.get("id") == rule_id else r) for r in rules], rule_id
    taken = {str(r.get("id")) for r in rules}
    number = len(rules) + 1
    while f"rule-{number}" in taken:
        number += 1
    return [*rules, {"id": f"rule-{number}", **fields}], f"rule-{number}"


async def save_keyword_rule(request: web.Request) -> web.StreamResponse:
    operators_only(request)
    form = await request.post()
    typed = {key: str(form.get(key, "")).strip() for key in ("id", "tag", "group", "keywords", "match")}
    bodies = await held_bodies(request)
    tags = dict(bodies.get("tags") or {})
    rules = [dict(r) for r in tags.get("rules", [])]
    if typed["id"] and not any(r.get("id") == typed["id"] and r.get("kind", "keyword") == "keyword" for r in rules):
        raise web.HTTPNotFound(text="no such keyword rule / 没有这条关键词规则")
    words = names(typed["keywords"])
    problems = [] if words else ["keywords: required"]
    rules, rule_id = keyword_rule_body(rules, typed["id"], typed["tag"], typed["group"], words, typed["match"])
    if not problems:
        _settings, problems = problems_with(live(request).base, bodies | {"tags": {**tags, "rules": rules}})
    if problems:
        return await rules_page(request, problems, typed, http_status=400)
    await store_change(request, "tags", {**tags, "rules": rules}, "console", rule_id)
    raise web.HTTPFound(f"/admin/rules?notice=saved&rule={rule_id}")
