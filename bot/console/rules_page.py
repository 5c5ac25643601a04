"""Tag rules and layer schemes in force, with how many members each reaches now.

Keyword rules are edited here (tag, group, words), a new one added; rules of every kind,
the groups and the schemes' conditions in the settings forms (`tag_forms`, `layer_forms`). A change is a new version of
the `tags` document, checked as `siyu check` checks the file, in force within seconds in
every process. Counts are SQL (one GROUP BY for every rule, one per scheme).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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
from bot.shared.rule_words import Reading, condition_reading, layer_readings, rule_reading  # noqa: F401 (tests read them here)
from bot.console.tag_forms import KIND_LABELS
from bot.settings.layers import SchemeSettings
from bot.settings.rules import TagGroupSettings, TagRuleSettings
from bot.shared.keys import SESSIONS
from bot.shared.live_config import live
from bot.shared.layer_summaries import ordered_layers
from storage.engagement import NO_LAYER, layer_counts
from storage.models import utcnow
from storage.rule_counts import TagSourceCount, last_layer_runs, tag_source_counts

RECENT_DAYS = 7


def add_routes(console: web.Application) -> None:
    console.router.add_get("/rules", rules_page)
    console.router.add_post("/rules/keywords", save_keyword_rule)


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
        notice=request.query.get("notice") == "saved", saved_rule=_tag_of(tags.rules, request.query.get("rule", "")),
    )


def _tag_of(rules: Sequence[Any], rule_id: str) -> str:
    """A saved rule named as operators know it: by the tag it gives (its id stays behind)."""
    return next((rule.tag for rule in rules if rule.id == rule_id), "")


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
