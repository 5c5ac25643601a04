"""What `siyu check` finds wrong in loaded settings, beyond their types: templates that do
not render (unknown variable, bad syntax), tags no rule gives, cron lines. The console
runs the same checks on an edited document before it is saved."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from bot.settings.care_plan import care_problems
from bot.settings.handlers import handler_config
from bot.settings.model import Settings, configured_tags
from bot.settings.templates import renderer_for
from scheduler.cron import cron_problem
from scheduler.layer_rules import unknown_tags

SAMPLE_VARIABLES = {
    "member": {"name": "王芳"},
    "store": {"name": "示例门店"},
    "owner": {"name": "示例店员"},
    "message": "你好",
}
SAMPLE_HANDOFF = {
    "task_id": 12,
    "reason": "hand-off word",
    "member": {"name": "王芳"},
    "messages": [{"from_member": True, "text": "我要投诉", "at": "11-23 10:00"}],
}



def sample_variables(persona: Mapping[str, Any], member: str | None = None, store: str | None = None,
                     owner: str | None = None) -> dict[str, Any]:
    """Everything any message may use, for one member (else a made-up one): calendar,
    care, replies and staff texts all render with it, so an unknown variable is found
    whichever kind of message an operator edits in the console."""
    return {
        "persona": dict(persona), "member": {"name": member}, "store": {"name": store} if store else None,
        "owner": {"name": owner or SAMPLE_VARIABLES["owner"]["name"]}, "message": SAMPLE_VARIABLES["message"],
        "new_tags": [], "opens_at": "11-24 09:00", "occasion": "birthday", "festival": "中秋",
        "date": date(2026, 9, 25), "years": 3, "calendar": "solar", "gift": False, "words": "……",
        "kind": "birthday", "label": "birthday", "task_id": SAMPLE_HANDOFF["task_id"],
        "reason": SAMPLE_HANDOFF["reason"], "messages": SAMPLE_HANDOFF["messages"],
    }


SAMPLE_MEMBER = (SAMPLE_VARIABLES["member"]["name"], SAMPLE_VARIABLES["store"]["name"], SAMPLE_VARIABLES["owner"]["name"])


def settings_problems(settings: Settings) -> list[str]:
    """Every problem, as `key.path: what`."""
    problems: list[str] = []
    renderer = renderer_for(settings)
    if settings.templates.dir and not Path(settings.templates.dir).is_dir():
        problems.append(f"templates.dir: no such directory {settings.templates.dir}")
    persona = handler_config(settings).persona
    tags = [rule.tag for rule in settings.tags.rules]
    # Render the reply both with and without tags, so each branch of the template is tried.
    for new_tags in ([], tags[:1]):
        variables = {**SAMPLE_VARIABLES, "persona": persona.template_variables(), "new_tags": new_tags}
        for problem in renderer.problems(persona.reply_template, variables):
            problems.append(f"persona.reply_template: {problem}")
    conversation = {**SAMPLE_VARIABLES, "persona": persona.template_variables(), "new_tags": tags[:1]}
    replies, handoff = settings.replies, settings.handoff
    for key, template, variables in [
        *((f"replies.faq[{n}].template", f.template, conversation) for n, f in enumerate(replies.faq)),
        ("replies.office_hours.template", replies.office_hours.template if replies.office_hours else None,
         {**conversation, "opens_at": "11-24 09:00"}),
        ("replies.budget_template", replies.budget_template, conversation),
        ("handoff.notice_template", handoff.notice_template, {**conversation, "opens_at": "11-24 09:00"}),
        ("handoff.task_template", handoff.task_template, SAMPLE_HANDOFF),
    ]:
        if template is not None:
            problems.extend(f"{key}: {p}" for p in renderer.problems(template, variables))
    known_tags = configured_tags(settings)
    for n, scheme in enumerate(settings.layers.schemes):
        problems.extend(f"layers.schemes[{n}]: unknown tag {tag!r} (no tag rule, channel or layers.known_tags "
                        "gives it)" for tag in unknown_tags(scheme.scheme(), known_tags))
    problems.extend(f"{p}" for p in care_problems(settings, renderer.problems))
    crons = [("tags.sweep_cron", settings.tags.sweep_cron), ("layers.recompute_cron", settings.layers.recompute_cron),
             ("layers.engagement_cron", settings.layers.engagement_cron), ("tasks.digest_cron", settings.tasks.digest_cron),
             ("outcomes.digest_cron", settings.outcomes.digest_cron), ("outcomes.ltv_cron", settings.outcomes.ltv_cron)]
    if settings.layers.scheme(settings.outcomes.scheme) is None:
        problems.append(f"outcomes.scheme: no layer scheme {settings.outcomes.scheme!r}")
    wecom = settings.platforms.wecom
    if wecom is not None:
        crons.append(("platforms.wecom.reconcile_cron", wecom.reconcile_cron))
        crons.append(("platforms.wecom.moments_read_cron", wecom.moments_read_cron))
        crons.append(("platforms.wecom.mass_results_cron", wecom.mass_results_cron))
    for key, line in crons:
        if problem := cron_problem(line, settings.zone):
            problems.append(f"{key}: {problem}")
    return problems
