"""In-process fan-out of delivered sandbox messages to the chat pages watching them."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

Event = dict[str, Any]
# Whom a page watches: a member by her sandbox name (a plain string), or a staff member
# by `staff_key(userid)`, which no member name can equal, so a member who shares a
# staff member's name never sees the prompts meant for staff.
Watched = str | tuple[str, str]


def staff_key(userid: str) -> tuple[str, str]:
    return ("staff", userid)


class SandboxHub:
    def __init__(self) -> None:
        self._watchers: dict[Watched, set[asyncio.Queue[Event | None]]] = {}

    def watch(self, who: Watched) -> asyncio.Queue[Event | None]:
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._watchers.setdefault(who, set()).add(queue)
        return queue

    def unwatch(self, who: Watched, queue: asyncio.Queue[Event | None]) -> None:
        watchers = self._watchers.get(who)
        if watchers is not None:
            watchers.discard(queue)
            if not watchers:
                del self._watchers[who]

    def publish(self, who: Watched, event: Event) -> int:
        """Hand `event` to every page watching `who`; returns how many there were."""
        watchers = self._watchers.get(who, set())
        for queue in watchers:
            queue.put_nowait(event)
        return len(watchers)

    def close(self) -> None:
        """End every stream, so a shutdown does not wait on open pages."""
        for watchers in self._watchers.values():
            for queue in watchers:
                queue.put_nowait(None)


SANDBOX_HUB = web.AppKey("sandbox_hub", SandboxHub)  # the app's hub, where the sandbox is enabled
