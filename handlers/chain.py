"""The handler chain: one literal, ordered tuple, checked when the app is built."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence

from handlers import persona_reply, record_interaction, tagging
from handlers.actions import Action
from handlers.context import HandlerContext
from handlers.updates import Update

Handler = Callable[[Update, HandlerContext], Awaitable[Sequence[Action]]]

DEFAULT_CHAIN: tuple[Handler, ...] = (
    record_interaction.handle,
    tagging.handle,
    persona_reply.handle,
)


class BadHandler(TypeError):
    pass


def checked_chain(chain: Sequence[Handler]) -> tuple[Handler, ...]:
    """Refuse, at start-up, anything that is not `async def handle(update, ctx)`."""
    for position, handler in enumerate(chain):
        name = getattr(handler, "__qualname__", repr(handler))
        if not inspect.iscoroutinefunction(handler):
            raise BadHandler(f"handler {position} ({name}) is not an async function")
        if len(inspect.signature(handler).parameters) != 2:
            raise BadHandler(f"handler {position} ({name}) must take (update, ctx)")
    return tuple(chain)
