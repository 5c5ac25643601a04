"""Reading back Moments posts: every so often, one `moment_read` request row per post of
the last days, which the WeCom sender answers (who published, who liked and commented).
The scheduler only queues: it never talks to a platform."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from storage.engine import SessionFactory
from storage.moments import posted_since
from storage.outbox import NewOutboxMessage, enqueue


async def queue_moment_reads(sessions: SessionFactory, now: datetime, days: int) -> int:
    """Queue a read of each post created in the last `days` days; returns how many."""
    async with sessions() as session, session.begin():
        posts = await posted_since(session, now - timedelta(days=days))
        await enqueue(session, [
            NewOutboxMessage(f"moment:{post.id}:read:{now:%Y%m%dT%H%M%S.%f}", "wecom", post.moment_id or "", "request", "",
                             route="moment_read", meta=json.dumps({"post": post.id}))
            for post in posts
        ], now)
    return len(posts)
