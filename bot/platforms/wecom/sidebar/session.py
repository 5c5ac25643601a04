"""The sidebar's own short session: a signed cookie naming the staff member WeCom's
OAuth2 gave us, until when. Not a console login: it opens the sidebar's paths only
(the cookie's path), lasts `session_minutes`, and any process with the WeCom app
secret checks it, so nothing is stored per sign-in.

POSTs from the page also carry a token derived from the cookie (header
`X-Sidebar-Token`): a form elsewhere cannot forge it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

COOKIE = "siyu_sidebar"
STATE_COOKIE = "siyu_sidebar_state"
CSRF_HEADER = "X-Sidebar-Token"


def key_for(app_secret: str) -> bytes:
    """The signing key, derived from the app secret (rotating the secret ends every session)."""
    return hashlib.sha256(b"siyu-sidebar-session:" + app_secret.encode()).digest()


def _mac(key: bytes, text: str) -> str:
    return base64.urlsafe_b64encode(hmac.digest(key, text.encode(), hashlib.sha256)).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class SidebarSession:
    userid: str
    until: int  # unix seconds

    def cookie(self, key: bytes) -> str:
        body = base64.urlsafe_b64encode(f"{self.userid}\n{self.until}".encode()).decode().rstrip("=")
        return f"{body}.{_mac(key, body)}"


def new_session(userid: str, minutes: int, now: float | None = None) -> SidebarSession:
    return SidebarSession(userid, int((now or time.time()) + minutes * 60))


def read_session(key: bytes, cookie: str | None, now: float | None = None) -> SidebarSession | None:
    """The session a cookie holds, if it is ours, unchanged and unexpired."""
    if not cookie or cookie.count(".") != 1:
        return None
    body, given = cookie.split(".")
    if not hmac.compare_digest(given.encode(), _mac(key, body).encode()):
        return None
    try:
        userid, until = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode().split("\n")
        session = SidebarSession(userid, int(until))
    except ValueError:
        return None
    return session if session.until > (now or time.time()) and userid else None


def csrf_token(key: bytes, cookie: str) -> str:
    return _mac(key, "csrf\n" + cookie)


def csrf_matches(key: bytes, cookie: str, given: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), csrf_token(key, cookie).encode())
