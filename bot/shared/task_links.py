"""Task links for staff prompts: a signed, expiring URL that opens a task page (or the
staff member's task list) without a password.

Staff act from their phone, where no one types a password: the link itself, signed with
the console secret, says which staff member it is for and until when it holds. It opens
that page only (and a task's done and skip, while the task is open): never a console
session (bot/console/site.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from bot.shared.params import whole_number

MAX_UNTIL = 253402300799  # 9999-12-31T23:59:59Z, the last second datetime can hold


def _signature(secret: bytes, path: str, staff_userid: str, until: int) -> str:
    message = f"{path}\n{staff_userid}\n{until}".encode("utf-8", "surrogatepass")  # a query may hold anything
    return base64.urlsafe_b64encode(hmac.digest(secret, message, hashlib.sha256)).decode().rstrip("=")


def signed_link(base_url: str, secret: bytes, path: str, staff_userid: str, now: datetime, days: int) -> str:
    """`path` (under /admin/tasks) for `staff_userid`, good for `days` days."""
    until = int((now + timedelta(days=days)).timestamp())
    query = urlencode({"as": staff_userid, "until": until, "sig": _signature(secret, path, staff_userid, until)})
    return f"{base_url}{path}?{query}"


def link_holder(secret: bytes, path: str, query: Mapping[str, str], now: datetime) -> str | None:
    """The staff userid a link to `path` was signed for, if genuine and unexpired."""
    userid, until, given = query.get("as", ""), query.get("until", ""), query.get("sig", "")
    expiry = whole_number(until, MAX_UNTIL)  # "²" passes isdigit(); a huge one overflows datetime
    if not (userid and expiry is not None and given):
        return None
    expected = _signature(secret, path, userid, expiry)
    if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode()):
        return None
    if datetime.fromtimestamp(expiry, timezone.utc) < now:
        return None
    return userid
