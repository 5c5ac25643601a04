"""The two JS-SDK tickets (WECOM.md §9.1; doc 96909): the corp's `jsapi_ticket`, which
signs `wx.config`, and the app's `agent_config` ticket, which signs `wx.agentConfig`.

Both live 7200 s and WeCom allows few fetches (400 an hour per corp, 100 per app), so
they are cached and refreshed like the access token: fetched once however many pages ask
at the same time, renewed a few minutes before they expire, and kept in a store every
process can read when the runtime offers one (`SharedValues`, the interface of the
access tokens shared through the database), else in this process. The app ticket is the
app's, so its key names the agent as well as the corp.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.errors import WeComRateLimited, WeComTransportError
from bot.platforms.wecom.ratelimit import WindowLimiter
from bot.platforms.wecom.shared_values import Fetched, ProcessValues, SharedValues

__all__ = ["Fetched", "ProcessValues", "SharedValues", "Tickets"]  # the stores live in shared_values.py

Kind = Literal["jsapi", "agent_config"]
PATHS: dict[Kind, tuple[str, dict[str, str]]] = {
    "jsapi": ("/cgi-bin/get_jsapi_ticket", {}),
    "agent_config": ("/cgi-bin/ticket/get", {"type": "agent_config"}),
}
# Fetches an hour WeCom allows (doc 90454 「获取jsapi_ticket」): beyond them it answers 45009.
HOURLY_FETCHES: dict[Kind, int] = {"jsapi": 400, "agent_config": 100}
MARGIN = 300.0  # renew this long before expiry (at most half the lifetime)


@dataclass(frozen=True, slots=True)
class _Held:
    value: str
    refresh_at: float


class Tickets:
    def __init__(
        self,
        client: WeComClient,
        agent_id: int,
        store: SharedValues | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._client = client
        self._agent_id = agent_id
        self._clock = clock
        self._store = store or ProcessValues(clock)
        self._held: dict[Kind, _Held] = {}
        self._limiters = {kind: WindowLimiter([(count, 3600.0)], clock) for kind, count in HOURLY_FETCHES.items()}
        self.fetched = 0

    def name(self, kind: Kind) -> str:
        corp = self._client.corp_id
        return f"wecom:{corp}:jsapi_ticket" if kind == "jsapi" else f"wecom:{corp}:{self._agent_id}:agent_config_ticket"

    async def ticket(self, kind: Kind) -> str:
        held = self._held.get(kind)
        if held is not None and self._clock() < held.refresh_at:
            return held.value
        value, left = await self._store.fetch(self.name(kind), lambda: self._fetch(kind), MARGIN)
        margin = min(MARGIN, left / 2)
        self._held[kind] = _Held(value, self._clock() + left - margin)
        return value

    async def forget(self, kind: Kind, value: str) -> None:
        """Drop a ticket WeCom no longer takes (the page's config failed with it)."""
        if (held := self._held.get(kind)) is not None and held.value == value:
            del self._held[kind]
        await self._store.forget(self.name(kind), value)

    async def _fetch(self, kind: Kind) -> Fetched:
        path, query = PATHS[kind]
        if (wait := self._limiters[kind].wait_for(kind)) > 0:
            # A page failing in a loop must not spend the hour's fetches for everyone.
            raise WeComRateLimited(path, kind, wait)
        self._limiters[kind].record(kind)
        data = await self._client.call("GET", path, query=query)
        value, lifetime = data.get("ticket"), data.get("expires_in")
        if not isinstance(value, str) or not value or not isinstance(lifetime, int) or lifetime <= 0:
            raise WeComTransportError(path, "ticket answer lacks ticket/expires_in", retryable=False)
        self.fetched += 1
        return value, lifetime
