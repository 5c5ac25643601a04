"""Saving a configuration document from the console, whichever editor it came from (the
TOML editor, the per-field forms, the rules page, the calendar's own texts): what is in
force, the check `siyu check` makes, and the new version applied in this process at once
(every other process within seconds, `bot.shared.live_config`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.console.config_words import Problem, spoken_all
from bot.console.i18n import translator
from bot.console.keys import LANGUAGE, operators_only
from bot.settings.checks import settings_problems
from bot.settings.documents import apply_documents, documents_of
from bot.settings.model import ConfigError, Settings
from bot.shared.keys import SESSIONS
from bot.shared.live_config import live
from storage.config_docs import current_documents, save_document

NOTICES = {"saved": "已保存为第 {version} 版，所有进程几秒内生效。", "rolled_back": "已恢复为第 {from_version} 版的内容（保存为第 {version} 版）。",
           "unchanged": "内容没有变化，没有保存新版本。"}


async def held_bodies(request: web.Request) -> dict[str, Any]:
    """Every document as the database holds it (the file's where it holds none)."""
    now = live(request)
    async with request.config_dict[SESSIONS]() as session:
        documents = await current_documents(session)
    return documents_of(now.base) | {name: d.body for name, d in documents.items()}


def problems_with(base: Settings, bodies: dict[str, Any]) -> tuple[Settings | None, list[str]]:
    """The settings `bodies` make over the file's, and what `siyu check` finds in them."""
    try:
        settings = apply_documents(base, bodies)
    except ConfigError as error:
        return None, error.problems
    return settings, settings_problems(settings)


async def store_change(request: web.Request, name: str, body: Any, source: str, note: str = "") -> int | None:
    """Save `body` as the next version of `name` (None: it is what is in force already),
    then apply it in this process at once."""
    viewer = operators_only(request)
    async with request.config_dict[SESSIONS]() as session:
        saved = await save_document(session, name, body, source=source, author=viewer.login, note=note)
        await session.commit()
    await live(request).refresh(request.config_dict[SESSIONS])
    return saved.version if saved is not None else None


def spoken(request: web.Request, problems: list[str]) -> list[Problem]:
    return spoken_all(problems, translator(request.get(LANGUAGE, "zh")))
