"""The settings sections operators touch most, as forms in words (operators only).

A form is a front for the TOML editor: the section's document is built from the fields
(`bot.console.section_forms`), checked as `siyu check` checks the file against what else
is in force, and saved as a new version by the same path (`bot.console.config_store`).
A check that fails shows each problem by its field, and the form as the operator typed it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.console import layer_forms, tag_forms
from bot.console.config_store import NOTICES, held_bodies, problems_with, spoken, store_change
from bot.console.keys import operators_only
from bot.console.render import render
from bot.shared.rule_words import layer_readings, rule_reading
from bot.console.section_forms import GENERAL, body_of, field_of, posted_values, values_of, with_blank_rows
from bot.settings.documents import DOCUMENTS
from bot.settings.model import Settings, configured_tags
from bot.shared.keys import SESSIONS
from bot.shared.live_config import live
from storage.calendar import known_names
from storage.config_docs import history
from storage.groups import group_names
from storage.staff_messages import active_staff

TEXTS_SAVED = "回答的文字已保存为消息文案第 {texts_version} 版。"
OCCASIONS = (("birthday", "生日"), ("anniversary", "入会纪念日"), ("winback", "流失挽回"), ("festival", "所有节日"))
CARE_TEXTS = (("birthday", "生日的消息"), ("anniversary", "入会纪念日的消息"), ("festival", "节日的消息"),
              ("winback", "流失挽回的消息"), ("task", "给店员的任务"))


async def form_editor(request: web.Request, name: str) -> web.Response:
    operators_only(request)
    now = live(request)
    return await form_page(request, name, values_of(name, now.settings, now.renderer.source), [])


async def form_page(request: web.Request, name: str, values: Mapping[str, Any], problems: list[str],
                    rows: Mapping[str, Mapping[str, int]] | None = None, http_status: int = 200) -> web.Response:
    settings = live(request).settings
    async with request.config_dict[SESSIONS]() as session:
        versions = await history(session, name)
        staff = await active_staff(session) if name == "handoff" else []
        stores = (await known_names(session))[1] if name == "tags" else []
        chat_groups = await group_names(session) if name == "tags" else []
    by_field: dict[str, list[str]] = {}
    general = []
    for problem, said in zip(problems, spoken(request, problems), strict=True):
        where = field_of(name, problem, rows or {})
        if where == GENERAL:
            general.append(said)
        else:
            by_field.setdefault(where, []).append(said.text)
    notice = request.query.get("notice", "")
    return render(request, "settings_form.html", http_status=http_status, name=name, label=DOCUMENTS[name],
                  values=with_blank_rows(name, dict(values)), field_problems=by_field, problems=general,
                  versions=versions, notice=NOTICES.get(notice), notice_fields=dict(request.query),
                  texts_saved=TEXTS_SAVED if request.query.get("texts_version", "").isdigit() else None,
                  zone=settings.zone, tags=sorted(configured_tags(settings)), staff=staff,
                  schemes=[(s.name, s.label or s.name) for s in settings.layers.schemes],
                  layer_labels={s.name: s.layer_labels() for s in settings.layers.schemes},
                  patterns={f.id: f.pattern for f in settings.replies.faq if f.pattern},
                  occasions=[*OCCASIONS, *((f"festival-{f.name}", f.name) for f in settings.care.festivals)],
                  care_texts=[(label, "/admin/settings/texts?" + urlencode({"name": getattr(settings.care.templates, key)}))
                              for key, label in CARE_TEXTS],
                  **(_tag_choices(settings, stores, chat_groups) if name == "tags" else {}),
                  metrics=layer_forms.METRICS, comparisons=layer_forms.COMPARISONS,
                  # what is in force, in words, beside the fields (the rules page's readings)
                  rule_readings={r.id: rule_reading(r) for r in settings.tags.rules} if name == "tags" else {},
                  layer_words={f"{s.name}:{n}": layer_readings(layer.layer()) for s in settings.layers.schemes
                               for n, layer in enumerate(s.layers)} if name == "layers" else {})


def _tag_choices(settings: Settings, stores: list[tuple[str, str]], chat_groups: list[str]) -> dict[str, Any]:
    """What an operator picks a rule's event and its subject from, by name: channels (by
    their code and store), customer groups, stores."""
    wecom = settings.platforms.wecom
    store_names = dict(stores)
    channels = [(code, code + (f" · {store_names.get(c.store, c.store)}" if c.store else ""))
                for code, c in (wecom.channels.items() if wecom else ())]
    subjects = {"channel": channels, "group": [(g, g) for g in chat_groups], "store": stores}
    return {"kinds": tag_forms.KINDS, "kind_labels": tag_forms.KIND_LABELS, "events": tag_forms.EVENT_LABELS,
            "event_subjects": tag_forms.EVENT_SUBJECTS, "subjects": subjects,
            "subject_values": {value for listed in subjects.values() for value, _shown in listed},
            "tag_groups": [g.name for g in settings.tags.groups]}


async def save_form(request: web.Request, name: str, form: Mapping[str, Any]) -> web.StreamResponse:
    """Check and save a section's form; the same check and versions as its TOML."""
    operators_only(request)
    now = live(request)
    values = posted_values(name, form)
    bodies = await held_bodies(request)
    built = body_of(name, values, bodies.get(name), now.renderer.source)
    texts = dict(bodies.get("templates") or {}) | built.texts
    problems = list(built.problems)
    settings = None
    if not problems:
        settings, problems = problems_with(now.base, bodies | {name: built.body, "templates": texts})
    if problems or settings is None:
        return await form_page(request, name, values, problems, built.rows, http_status=400)
    note = str(form.get("note", ""))
    query: dict[str, str] = {"notice": "unchanged"}
    if built.texts:  # the answers first: the entries that name them follow
        texts_version = await store_change(request, "templates", texts, "console", note or name)
        if texts_version:
            query["texts_version"] = str(texts_version)
    # A form writes every field it shows: a value equal to its default is no change.
    if getattr(settings, name) != getattr(now.settings, name):
        version = await store_change(request, name, built.body, "console", note)
        if version:
            query |= {"notice": "saved", "version": str(version)}
    elif "texts_version" in query:
        query["notice"] = ""
    raise web.HTTPFound(f"/admin/settings/{name}?{urlencode(query)}")
