"""`siyu check`: everything that can be wrong with a configuration, found before serving."""

from __future__ import annotations

import sys
from pathlib import Path

from bot.cli.calendar import calendar_file_problems
from bot.settings.care_plan import care_problems
from bot.settings.handlers import handler_config
from bot.settings.model import ConfigError, Settings, configured_tags, load_settings
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


def check(path: Path) -> int:
    """`siyu check`: 0 and a one-line summary, or 1 and every problem on stderr."""
    settings, problems = problems_in(path)
    if problems or settings is None:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return 1
    print(summary(path, settings))
    return 0


def problems_in(path: Path) -> tuple[Settings | None, list[str]]:
    """The settings (when they load) and every problem found, as `file: where: what`."""
    try:
        settings = load_settings(path)
    except ConfigError as error:
        return None, error.problems
    problems: list[str] = []
    renderer = renderer_for(settings)
    if settings.templates.dir and not Path(settings.templates.dir).is_dir():
        problems.append(f"{path}: templates.dir: no such directory {settings.templates.dir}")
    persona = handler_config(settings).persona
    tags = [rule.tag for rule in settings.tags.rules]
    # Render the reply both with and without tags, so each branch of the template is tried.
    for new_tags in ([], tags[:1]):
        variables = {**SAMPLE_VARIABLES, "persona": persona.template_variables(), "new_tags": new_tags}
        for problem in renderer.problems(persona.reply_template, variables):
            problems.append(f"{path}: persona.reply_template: {problem}")
    conversation = {**SAMPLE_VARIABLES, "persona": persona.template_variables(), "new_tags": tags[:1]}
    replies, handoff = settings.replies, settings.handoff
    for key, template, variables in [
        *((f"replies.faq[{n}].template", f.template, conversation) for n, f in enumerate(replies.faq)),
        ("replies.office_hours.template", replies.office_hours.template if replies.office_hours else None,
         {**conversation, "opens_at": "11-24 09:00"}),
        ("handoff.notice_template", handoff.notice_template, {**conversation, "opens_at": "11-24 09:00"}),
        ("handoff.task_template", handoff.task_template, SAMPLE_HANDOFF),
    ]:
        if template is not None:
            problems.extend(f"{path}: {key}: {p}" for p in renderer.problems(template, variables))
    known_tags = configured_tags(settings)
    for n, scheme in enumerate(settings.layers.schemes):
        problems.extend(f"{path}: layers.schemes[{n}]: unknown tag {tag!r} (no tag rule, channel or layers.known_tags "
                        "gives it)" for tag in unknown_tags(scheme.scheme(), known_tags))
    problems.extend(f"{path}: {p}" for p in care_problems(settings, renderer.problems))
    crons = [("tags.sweep_cron", settings.tags.sweep_cron), ("layers.recompute_cron", settings.layers.recompute_cron),
             ("layers.engagement_cron", settings.layers.engagement_cron), ("tasks.digest_cron", settings.tasks.digest_cron),
             ("outcomes.digest_cron", settings.outcomes.digest_cron), ("outcomes.ltv_cron", settings.outcomes.ltv_cron)]
    if settings.layers.scheme(settings.outcomes.scheme) is None:
        problems.append(f"{path}: outcomes.scheme: no layer scheme {settings.outcomes.scheme!r}")
    wecom = settings.platforms.wecom
    if wecom is not None:
        crons.append(("platforms.wecom.reconcile_cron", wecom.reconcile_cron))
        crons.append(("platforms.wecom.moments_read_cron", wecom.moments_read_cron))
    for key, line in crons:
        if problem := cron_problem(line, settings.zone):
            problems.append(f"{path}: {key}: {problem}")
    if calendar_file := settings.calendar.file:  # the calendar operators keep in a file
        problems.extend(calendar_file_problems(settings, path.parent / calendar_file))
    return settings, sorted(set(problems), key=problems.index)


def summary(path: Path, settings: Settings) -> str:
    platforms = [name for name in ("wecom", "oa") if getattr(settings.platforms, name) is not None]
    if settings.platforms.sandbox.enabled:
        platforms.append("sandbox")
    backend = settings.storage.url.split(":", 1)[0]
    return (
        f"{path}: OK — persona {settings.persona.name}, platforms: {', '.join(platforms) or 'none'}, "
        f"{len(settings.tags.rules)} tag rules, {len(settings.replies.faq)} FAQ entries, "
        f"database {backend}, time zone {settings.timezone}"
    )
