"""`siyu check`: everything that can be wrong with a configuration, found before serving."""

from __future__ import annotations

from pathlib import Path

from bot.app import renderer_for
from bot.config import ConfigError, Settings, load_settings
from bot.handler_config import handler_config
from scheduler.cron import cron_problem

SAMPLE_VARIABLES = {
    "member": {"name": "王芳"},
    "store": {"name": "示例门店"},
    "owner": {"name": "示例店员"},
    "message": "你好",
}


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
    wecom = settings.platforms.wecom
    if wecom is not None and (problem := cron_problem(wecom.reconcile_cron, settings.zone)):
        problems.append(f"{path}: platforms.wecom.reconcile_cron: {problem}")
    return settings, sorted(set(problems), key=problems.index)


def summary(path: Path, settings: Settings) -> str:
    platforms = [name for name in ("wecom", "oa") if getattr(settings.platforms, name) is not None]
    if settings.platforms.sandbox.enabled:
        platforms.append("sandbox")
    backend = settings.storage.url.split(":", 1)[0]
    return (
        f"{path}: OK — persona {settings.persona.name}, platforms: {', '.join(platforms) or 'none'}, "
        f"{len(settings.tags.rules)} tag rules, database {backend}, time zone {settings.timezone}"
    )
