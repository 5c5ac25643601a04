"""The handler chains: literal, ordered tuples, checked when the app is built.

Member updates run MEMBER_CHAIN with the member resolved; updates from staff (commands)
or about the platform itself run PLATFORM_CHAIN. A handler that fully answers an update
(an opt-out word, a hand-off) ends the member chain.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from handlers import (
    auto_reply,
    contact_events,
    hand_off,
    opt_out,
    orders,
    platform_events,
    record_interaction,
    staff_changes,
    staff_commands,
    tagging,
)
from handlers.actions import Action
from handlers.context import HandlerContext, PlatformContext
from handlers.updates import Update

Handler = Callable[[Update, HandlerContext], Awaitable[Sequence[Action]]]
PlatformHandler = Callable[[Update, PlatformContext], Awaitable[Sequence[Action]]]

MEMBER_CHAIN: tuple[Handler, ...] = (
    record_interaction.handle,
    opt_out.handle,
    contact_events.handle,
    orders.handle,
    tagging.handle,
    hand_off.handle,
    auto_reply.handle,
)
PLATFORM_CHAIN: tuple[PlatformHandler, ...] = (platform_events.handle, staff_changes.handle, staff_commands.handle)


class BadHandler(TypeError):
    pass


def checked_chain(chain: Sequence[Any]) -> tuple[Any, ...]:
    """Refuse, at start-up, anything that is not `async def handle(update, ctx)`."""
    for position, handler in enumerate(chain):
        name = getattr(handler, "__qualname__", repr(handler))
        if not inspect.iscoroutinefunction(handler):
            raise BadHandler(f"handler {position} ({name}) is not an async function")
        if len(inspect.signature(handler).parameters) != 2:
            raise BadHandler(f"handler {position} ({name}) must take (update, ctx)")
    return tuple(chain)
