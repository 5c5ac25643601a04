"""Request ids: one short id that follows an update from its callback through its
handling to every send it led to, so the log lines of one member's message can be found
together.

The id is derived from the update's idempotency key, so the callback, the dispatcher and
a platform's retry of the same callback all name it alike without storing it; outbox
rows carry it in their JSON `meta` (`rid`), set when they are queued. Scheduled jobs set
one per run, which the rows they queue carry in the same way.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from contextvars import ContextVar, Token

REQUEST_ID: ContextVar[str | None] = ContextVar("siyu_request_id", default=None)


def request_id_of(key: str) -> str:
    """The request id of the update whose idempotency key is `key` (12 hex digits)."""
    return hashlib.blake2b(key.encode(), digest_size=6).hexdigest()


def new_request_id(prefix: str) -> str:
    """A fresh id for work that no update started (a scheduled job's run)."""
    return f"{prefix}-{secrets.token_hex(4)}"


class traced:  # noqa: N801 - reads as what it does: `with traced(request_id):`
    """Log lines written inside (and rows queued inside) carry `request_id`. Usable with
    `with` and with `async with` (beside another asynchronous context)."""

    def __init__(self, request_id: str | None):
        self._request_id = request_id
        self._token: Token[str | None] | None = None

    def __enter__(self) -> None:
        self._token = REQUEST_ID.set(self._request_id)

    def __exit__(self, *_exc: object) -> None:
        assert self._token is not None
        REQUEST_ID.reset(self._token)

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)


def stamped(meta: str) -> str:
    """An outbox row's JSON `meta` carrying the current request id, when there is one."""
    request_id = REQUEST_ID.get()
    if request_id is None:
        return meta
    found = json.loads(meta or "{}")
    if not isinstance(found, dict) or "rid" in found:
        return meta
    return json.dumps({**found, "rid": request_id}, ensure_ascii=False)


def request_id_in(meta: str) -> str | None:
    """The request id an outbox row's `meta` carries, if any."""
    found = json.loads(meta or "{}")
    return str(found["rid"]) if isinstance(found, dict) and found.get("rid") else None
