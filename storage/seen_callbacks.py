"""Callback signature triples already seen, shared by every process through the
database: a replayed request (the same signature, timestamp and nonce) is refused."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete

from storage.dialects import insert_ignoring_conflicts
from storage.engine import SessionFactory
from storage.models import SeenCallback

SEEN = SeenCallback.__table__  # type: ignore[attr-defined]


def triple_digest(signature: str, timestamp: str, nonce: str) -> str:
    """One short key for the triple; lengths prefixed, so no two triples share it."""
    joined = "\n".join(f"{len(part)}:{part}" for part in (signature, timestamp, nonce))
    return hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()


async def claim(sessions: SessionFactory, platform: str, digest: str, now: datetime, window: timedelta) -> bool:
    """Record the triple; False when it was seen within the window (a replay). Rows older
    than the window are pruned in the same transaction."""
    async with sessions() as session, session.begin():
        await session.execute(delete(SEEN).where(SEEN.c.seen_at < now - window))
        dialect = session.bind.dialect.name
        statement = insert_ignoring_conflicts(SEEN, dialect, ["platform", "digest"]).values(
            platform=platform, digest=digest, seen_at=now
        )
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT … ON CONFLICT DO NOTHING.
        inserted = (await session.execute(statement.returning(SEEN.c.digest))).scalar_one_or_none()
    return inserted is not None


async def release(sessions: SessionFactory, platform: str, digest: str) -> None:
    """Forget a claimed triple whose request could not be stored, so the platform's retry
    of it is taken."""
    async with sessions() as session, session.begin():
        await session.execute(delete(SEEN).where(SEEN.c.platform == platform, SEEN.c.digest == digest))
