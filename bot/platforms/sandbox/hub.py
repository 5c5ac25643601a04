"""In-process fan-out of delivered sandbox messages to the chat pages watching them."""

from __future__ import annotations

import asyncio
from typing import Any

Event = dict[str, Any]


class SandboxHub:
    def __init__(self) -> None:
        self._watchers: dict[str, set[asyncio.Queue[Event | None]]] = {}

    def watch(self, member: str) -> asyncio.Queue[Event | None]:
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._watchers.setdefault(member, set()).add(queue)
        return queue

    def unwatch(self, member: str, queue: asyncio.Queue[Event | None]) -> None:
        watchers = self._watchers.get(member)
        if watchers is not None:
            watchers.discard(queue)
            if not watchers:
                del self._watchers[member]

    def publish(self, member: str, event: Event) -> int:
        """Hand `event` to every page watching `member`; returns how many there were."""
        watchers = self._watchers.get(member, set())
        for queue in watchers:
            queue.put_nowait(event)
        return len(watchers)

    def close(self) -> None:
        """End every stream, so a shutdown does not wait on open pages."""
        for watchers in self._watchers.values():
            for queue in watchers:
                queue.put_nowait(None)
