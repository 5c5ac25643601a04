"""The configuration in force in this process: the file's settings with the database's
documents laid over them, and what the handlers, the renderer and delivery build from it.

Every process asks the database for one number every few seconds (`change_stamp`, the
newest version's id); when it moved, the documents are read again, validated, and the
derived objects rebuilt in a thread (the rules' keyword automaton is CPU work) before
they are swapped in. A document that no longer validates (written by hand in the
database, or by a newer siyu) is logged and the last good configuration stays.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.settings.delivery import delivery_policy
from bot.settings.documents import apply_documents
from bot.settings.handlers import handler_config
from bot.settings.model import ConfigError, Settings
from bot.settings.templates import renderer_for
from content_templates.renderer import Renderer
from handlers.config import HandlerConfig
from scheduler.gate import DeliveryPolicy
from storage.config_docs import change_stamp, current_documents
from storage.engine import SessionFactory

log = logging.getLogger(__name__)
POLL_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Derived:
    settings: Settings
    handlers: HandlerConfig
    renderer: Renderer
    delivery: DeliveryPolicy


def derive(settings: Settings) -> Derived:
    return Derived(settings, handler_config(settings), renderer_for(settings), delivery_policy(settings))


class LiveConfig:
    def __init__(self, base: Settings):
        self.base = base  # the file's settings, under every document
        self._now = derive(base)
        self.stamp = -1  # the change stamp the configuration in force was read at
        self._listeners: list[Callable[[Derived], None]] = []

    @property
    def settings(self) -> Settings:
        return self._now.settings

    @property
    def handlers(self) -> HandlerConfig:
        return self._now.handlers

    @property
    def renderer(self) -> Renderer:
        return self._now.renderer

    @property
    def delivery(self) -> DeliveryPolicy:
        return self._now.delivery

    def on_change(self, listener: Callable[[Derived], None]) -> None:
        self._listeners.append(listener)

    async def refresh(self, sessions: SessionFactory) -> bool:
        """Read the documents again if anything changed since; True when it did."""
        async with sessions() as session:
            stamp = await change_stamp(session)
            if stamp == self.stamp:
                return False
            documents = await current_documents(session)
        bodies: dict[str, Any] = {name: d.body for name, d in documents.items()}
        try:
            derived = await asyncio.to_thread(lambda: derive(apply_documents(self.base, bodies)))
        except ConfigError as error:
            log.error("configuration in the database does not validate; keeping the last good one: %s",
                      "; ".join(error.problems))
            self.stamp = stamp
            return False
        self._now, self.stamp = derived, stamp
        for listener in self._listeners:
            listener(derived)
        if stamp:
            log.info("configuration reloaded (change %d)", stamp)
        return True

    async def watch(self, sessions: SessionFactory, every: float = POLL_SECONDS,
                    tick: Callable[[], None] = lambda: None) -> None:
        """Look for console edits every `every` seconds; `tick` after each look that worked
        (the app's loop supervisor reports a watcher that keeps failing in /healthz)."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.refresh(sessions)
                tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup: ask again next time
                log.exception("could not read the configuration's change stamp")


LIVE = web.AppKey("live_config", LiveConfig)


def live(request: web.Request) -> LiveConfig:
    """The configuration in force, from any page or route (sub-applications included)."""
    return request.config_dict[LIVE]
