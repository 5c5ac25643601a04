"""The console session's cookie: a small dict, encrypted and signed (Fernet).

It carries the language, the CSRF token, the task links followed and the session token;
whether that token still signs someone in is the server's to say (`storage.console_auth`),
so a logout ends it everywhere. A cookie older than the session lifetime is refused by its
own timestamp.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from cryptography.fernet import Fernet, InvalidToken

COOKIE = "siyu_console"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ConsoleSession(dict[str, Any]):
    """Remembers whether it changed, so the cookie is written only then."""

    changed = False

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.changed = True

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def renew(self, **values: Any) -> None:
        """Start afresh (at login: a session id chosen before it must not carry over)."""
        self.clear()
        self.update(values)
        self.changed = True

    def end(self) -> None:
        self.renew()


SESSION = web.RequestKey("console_session", ConsoleSession)


def session_middleware(key: bytes, max_age_seconds: int, secure: bool) -> Any:
    fernet = Fernet(key)

    @web.middleware
    async def with_session(request: web.Request, handler: Handler) -> web.StreamResponse:
        session = ConsoleSession(_read(fernet, request.cookies.get(COOKIE), max_age_seconds))
        request[SESSION] = session
        try:
            response = await handler(request)
        except web.HTTPException as answer:  # redirects carry the cookie too
            _write(fernet, session, answer, max_age_seconds, secure)
            raise
        _write(fernet, session, response, max_age_seconds, secure)
        return response

    return with_session


def _read(fernet: Fernet, cookie: str | None, max_age_seconds: int) -> dict[str, Any]:
    if not cookie:
        return {}
    try:
        data = json.loads(fernet.decrypt(cookie.encode(), ttl=max_age_seconds))
    except (InvalidToken, ValueError):
        return {}  # tampered, from another secret, or expired: a stranger
    return data if isinstance(data, dict) else {}


def _write(fernet: Fernet, session: ConsoleSession, response: web.StreamResponse, max_age: int, secure: bool) -> None:
    if not session.changed or response.prepared:
        return
    if not session:
        response.del_cookie(COOKIE, path="/admin")
        return
    value = fernet.encrypt(json.dumps(session, ensure_ascii=False).encode()).decode()
    response.set_cookie(COOKIE, value, max_age=max_age, path="/admin", httponly=True, samesite="Lax", secure=secure)
