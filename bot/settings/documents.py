"""The configuration operators edit, as documents: one per section, in the shape TOML
gives it, so the database can keep them by version and `siyu config export` can write
them back. `apply_documents` lays the database's documents over the file's settings and
validates the result exactly as the file is validated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tomli_w
from pydantic import BaseModel, ValidationError

from bot.settings.model import ConfigError, Settings, describe

# name → (the settings section it replaces, its label in the console)
DOCUMENTS: dict[str, str] = {
    "persona": "人设",
    "replies": "自动回复与常见问题",
    "handoff": "转人工",
    "opt_out": "退订与恢复订阅",
    "tags": "标签规则与分组",
    "layers": "分层方案",
    "care": "关怀",
    "delivery": "发送策略（免打扰、频次上限）",
    "tasks": "任务与提醒",
    "templates": "消息文案",
}
# Kept by the file alone: where the rules file is (its rules are in the document).
_FILE_ONLY = {"tags": {"rules_file"}, "templates": {"dir"}}


def document_body(settings: Settings, name: str) -> Any:
    """Section `name` of `settings` as JSON-ready data (message texts: name → text)."""
    if name == "templates":
        return dict(settings.templates.texts)
    section: BaseModel = getattr(settings, name)
    return section.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude=_FILE_ONLY.get(name, set()))


def documents_of(settings: Settings) -> dict[str, Any]:
    return {name: document_body(settings, name) for name in DOCUMENTS}


def apply_documents(settings: Settings, bodies: Mapping[str, Any]) -> Settings:
    """`settings` with each document in `bodies` in place of its section; ConfigError
    lists every problem as `section.key: what` (a document about no section is ignored:
    a newer version of siyu may have written it)."""
    update: dict[str, Any] = {}
    problems: list[str] = []
    for name, body in bodies.items():
        if name not in DOCUMENTS:
            continue
        current: BaseModel = getattr(settings, name)
        if name == "templates":
            if not isinstance(body, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in body.items()):
                problems.append("templates.texts: must map template names to texts")
                continue
            update[name] = current.model_copy(update={"texts": dict(body)})
            continue
        kept = {key: getattr(current, key) for key in _FILE_ONLY.get(name, ())}
        try:
            update[name] = type(current).model_validate({**(body or {}), **kept})
        except ValidationError as error:
            problems.extend(f"{name}.{describe(e)}".replace(f"{name}.(top level)", name) for e in error.errors())
    if problems:
        raise ConfigError(problems)
    return settings.model_copy(update=update)


def documents_toml(bodies: Mapping[str, Any]) -> str:
    """The documents as one TOML file `siyu config load` reads back (texts under
    [templates.texts])."""
    data: dict[str, Any] = {}
    for name in DOCUMENTS:
        if name not in bodies:
            continue
        body = bodies[name]
        data[name] = {"texts": body} if name == "templates" else without_none(body)
    head = "# What the console holds: `siyu config load FILE` loads it back.\n\n"
    return head + tomli_w.dumps(data, multiline_strings=True)


def without_none(value: Any) -> Any:
    """TOML has no null: a key left out means its default, which is what None stands for."""
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_none(v) for v in value]
    return value
