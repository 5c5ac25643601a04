"""Queries for the console's sign-in state (`storage.console_models`): sessions that end
on the server, and a lockout of failed logins bounded in length, count and age."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.console_models import ConsoleSessionRow, LoginFailure

MAX_FAILURE_ROWS = 10_000  # logins tracked at once; the oldest go first beyond this


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


# -- sessions ------------------------------------------------------------------------------

async def open_session(session: AsyncSession, token: str, login: str, credential: str,
                       now: datetime, lifetime: timedelta) -> None:
    """Record a new sign-in (the caller commits); expired sessions are cleared on the way."""
    await session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.expires_at < now))  # type: ignore[arg-type]
    session.add(ConsoleSessionRow(id=digest(token), login=login, credential=credential,
                                  created_at=now, expires_at=now + lifetime))


async def session_login(session: AsyncSession, token: str, now: datetime) -> ConsoleSessionRow | None:
    """The live session a cookie's token names, or None (ended, expired or never)."""
    row = await session.get(ConsoleSessionRow, digest(token))
    return row if row is not None and row.expires_at > now else None


async def end_session(session: AsyncSession, token: str) -> None:
    await session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.id == digest(token)))  # type: ignore[arg-type]


async def end_sessions_of(session: AsyncSession, login: str) -> int:
    """End every session of `login` (a password changed); returns how many there were."""
    result = await session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.login == login))  # type: ignore[arg-type]
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# -- failed logins -------------------------------------------------------------------------

async def recent_failures(session: AsyncSession, login: str, now: datetime, window: timedelta) -> int:
    statement = select(LoginFailure.failures, LoginFailure.last_at).where(LoginFailure.key == digest(login))  # type: ignore[arg-type]
    row = (await session.execute(statement)).first()
    return int(row[0]) if row is not None and row[1] > now - window else 0


async def record_failure(session: AsyncSession, login: str, now: datetime, window: timedelta,
                         limit: int = MAX_FAILURE_ROWS) -> int:
    """Count one more failure for `login` (the count restarts after a quiet `window`),
    drop what is older than the window and keep at most `limit` logins.
    Returns the login's count; commits."""
    key, cutoff = digest(login), now - window
    await session.execute(delete(LoginFailure).where(LoginFailure.last_at <= cutoff))  # type: ignore[arg-type]
    known = (await session.execute(select(LoginFailure.key).where(LoginFailure.key == key))).first()  # type: ignore[arg-type]
    if known is None:
        session.add(LoginFailure(key=key, failures=1, last_at=now))
        try:
            await session.commit()
        except IntegrityError:  # another process counted this login at the same moment
            await session.rollback()
            await session.execute(update(LoginFailure).where(LoginFailure.key == key)  # type: ignore[arg-type]
                                  .values(failures=LoginFailure.failures + 1, last_at=now))
            await session.commit()
    else:
        await session.execute(update(LoginFailure).where(LoginFailure.key == key)  # type: ignore[arg-type]
                              .values(failures=LoginFailure.failures + 1, last_at=now))
        await session.commit()
    await _keep_at_most(session, limit)
    return await recent_failures(session, login, now, window)


async def _keep_at_most(session: AsyncSession, limit: int) -> None:
    count = (await session.execute(select(func.count()).select_from(LoginFailure))).scalar_one()
    if count <= limit:
        return
    oldest = select(LoginFailure.key).order_by(LoginFailure.last_at).limit(count - limit)  # type: ignore[arg-type]
    await session.execute(delete(LoginFailure).where(LoginFailure.key.in_(oldest)))  # type: ignore[attr-defined]
    await session.commit()


async def clear_failures(session: AsyncSession, login: str) -> None:
    await session.execute(delete(LoginFailure).where(LoginFailure.key == digest(login)))  # type: ignore[arg-type]
