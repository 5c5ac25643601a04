"""What every platform's callback route does last: store the update in the inbox, under
its request id, and count it; and how a refused callback is logged and counted."""

from __future__ import annotations

import functools
import logging

from aiohttp import web
from prometheus_client import Counter

from bot.shared.keys import INBOX
from handlers.updates import Update, is_urgent, kind_of, to_payload
from storage.inbox import NewInboxEntry
from storage.metrics import CALLBACKS_RECEIVED, count_refusal
from storage.tracing import request_id_of, traced

log = logging.getLogger(__name__)


async def store_update(app: web.Application, update: Update) -> None:
    """Store `update` durably (returns once committed). Its handling's log lines and
    rows carry its request id (derived from its key, so nothing here passes it on)."""
    await app[INBOX].add(NewInboxEntry(update.key, update.platform, update.sender, to_payload(update), is_urgent(update)))
    _received(update.platform).inc()
    if log.isEnabledFor(logging.DEBUG):  # the id is worked out only for the line that shows it
        with traced(request_id_of(update.key)):
            log.debug("stored a %s callback: %s", update.platform, kind_of(update))


@functools.cache
def _received(platform: str) -> Counter:
    """The platform's count of stored callbacks (looked up once: `labels` takes a lock)."""
    return CALLBACKS_RECEIVED.labels(platform)


def refuse(request: web.Request, platform: str, reason: str, detail: str) -> None:
    """Log and count a refused callback. `reason` is a short code (a metric label);
    `detail` says more, never a secret."""
    count_refusal(platform, reason)
    log.warning("refused %s callback from %s: %s", platform, request.remote, detail)
