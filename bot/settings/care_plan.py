"""The care settings turned into the plain values the scheduler works with (`care_plan`),
and what `siyu check` finds wrong with them (`care_problems`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date, time
from typing import Any

from bot.settings.model import Settings
from handlers.config import Persona
from scheduler.care import CarePlan
from scheduler.cron import cron_problem
from scheduler.six_moments import FILLER_KINDS, SixMomentsPlan


def care_plan(settings: Settings) -> CarePlan:
    """The care settings as the scheduler's plain values; ValueError names a bad scheme."""
    care, six = settings.care, settings.six_moments
    scheme = settings.layers.scheme(care.scheme)
    if scheme is None:
        known = ", ".join(s.name for s in settings.layers.schemes)
        raise ValueError(f"care.scheme: no layer scheme {care.scheme!r} (configured: {known})")
    unknown = sorted(set(care.layers) - set(scheme.order()))
    if unknown:
        raise ValueError(f"care.layers: no layer {', '.join(map(repr, unknown))} in scheme {care.scheme!r}")
    p = settings.persona
    persona = Persona(p.name, p.title, p.signature, p.default_line, dict(p.tips)).template_variables()
    festivals = tuple(f.festival() for f in care.festivals)
    plan = CarePlan(
        scheme=care.scheme, top_layer=scheme.top(), send_time=time.fromisoformat(care.send_time),
        task_days_ahead=care.task_days_ahead, winback_days=care.winback_days, festivals=festivals,
        rules={name: layer.rule() for name, layer in care.layers.items()}, top_rule=care.top_layer.rule(),
        other_rule=care.other_layers.rule(), templates=care.templates.templates(), persona=persona,
        global_control=settings.outcomes.global_control, control_gets_care=settings.outcomes.control_gets_care,
    )
    if not six.enabled:
        return plan
    top_rule = plan.rule_for(scheme.top())
    in_care = frozenset(k for k in ("birthday", "anniversary") if top_rule.task and top_rule.covers(k))
    moments = SixMomentsPlan(care.scheme, scheme.top(), six.days_ahead, tuple(six.kinds), six.template, festivals,
                             in_care)
    return replace(plan, six_moments=moments)


def care_problems(settings: Settings, render_problems: Callable[[str, Mapping[str, Any]], list[str]]) -> list[str]:
    """What `siyu check` finds wrong with care: the scheme and its layers, the cron line,
    and every care template rendered with sample values (each occasion, gift or not)."""
    try:
        plan = care_plan(settings)
    except ValueError as error:
        return [str(error)]
    care = settings.care
    problems = [f"care.scan_cron: {p}" for p in [cron_problem(care.scan_cron, settings.zone)] if p]
    sample = {"persona": dict(plan.persona), "member": {"name": "王芳"}, "store": {"name": "示例门店"},
              "date": date(2026, 9, 25), "years": 3, "calendar": "lunar"}
    for occasion in ("birthday", "anniversary", "festival", "winback"):
        variables = {**sample, "occasion": occasion, "festival": "中秋" if occasion == "festival" else None}
        template = getattr(plan.templates, occasion)
        problems += [f"care.templates.{occasion}: {p}" for p in render_problems(template, variables)]
        for gift in (True, False):
            task = {**variables, "gift": gift, "words": "……"}
            problems += [f"care.templates.task: {p}" for p in render_problems(plan.templates.task, task)]
    if plan.six_moments is not None:
        for kind in ("birthday", "anniversary", *FILLER_KINDS):
            variables = {**sample, "kind": kind, "label": kind}
            problems += [f"six_moments.template: {p}" for p in render_problems(plan.six_moments.template, variables)]
    return sorted(set(problems), key=problems.index)
