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
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("siyu_request_id", default=None)


def request_id_of(key: str) -> str:
    """The request id of the update whose idempotency key is `key` (12 hex digits)."""
    return hashlib.blake2b(key.encode(), digest_size=6).hexdigest()


def new_request_id(prefix: str) -> str:
    """A fresh id for work that no update started (a scheduled job's run)."""
    return f"{prefix}-{secrets.token_hex(4)}"


@contextmanager
def traced(request_id: str | None) -> Iterator[None]:
    """Log lines written inside (and rows queued inside) carry `request_id`."""
    token = REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        REQUEST_ID.reset(token)


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
