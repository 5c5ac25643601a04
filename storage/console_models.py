"""The console's sign-in state, kept in the database so every server process sees the
same: open sessions (a logout or a changed password ends them everywhere) and recent
failed logins (the lockout, bounded in size and age)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from storage.models import utcnow


class ConsoleSessionRow(SQLModel, table=True):
    """One signed-in console session. The cookie holds a random token; only its SHA-256
    is stored, so a copy of this table signs no one in."""

    __tablename__ = "console_sessions"
    id: str = Field(primary_key=True, max_length=64)  # sha256 hex of the cookie's token
    login: str = Field(max_length=64, index=True)
    # A digest of the login's password hash or token when she signed in: a changed
    # password no longer matches, and the session ends.
    credential: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)


class LoginFailure(SQLModel, table=True):
    """Recent failed logins of one login name (its digest: the name as typed is never
    kept, whatever its length)."""

    __tablename__ = "console_login_failures"
    key: str = Field(primary_key=True, max_length=64)  # sha256 hex of the login as typed
    failures: int = 0
    last_at: datetime = Field(default_factory=utcnow, index=True)
