"""WeCom API failures and what to do about them (WECOM.md §4.10).

WeCom answers every call with HTTP 200 and a JSON `errcode`; we decide on the code,
never on `errmsg` (its wording changes). Messages here name the API path only: a URL
would carry the access_token, and tokens and secrets never reach a log line.
"""

from __future__ import annotations

from typing import Literal

ErrorClass = Literal["retry", "token", "permanent"]

# Transient on WeCom's side: back off and try again.
RETRY_CODES = frozenset({-1, 6000, 45009, 45033, 41063, 41096})
# The cached access_token is no good: drop it, fetch a new one once, retry once.
TOKEN_CODES = frozenset({40014, 42001, 41001})

FREQUENCY_LIMIT = 45009
# 45009 blocks for the window of whichever limit was hit (minute, hour, day, month);
# the reply does not say which, so the shortest documented window is the floor.
FREQUENCY_BLOCK_SECONDS = 60.0


def classify(errcode: int) -> ErrorClass:
    if errcode in RETRY_CODES:
        return "retry"
    if errcode in TOKEN_CODES:
        return "token"
    return "permanent"


def retry_after(errcode: int) -> float | None:
    """The least time worth waiting before the next try, when the code implies one."""
    return FREQUENCY_BLOCK_SECONDS if errcode == FREQUENCY_LIMIT else None


class WeComApiError(Exception):
    """WeCom answered with a non-zero errcode."""

    def __init__(self, errcode: int, errmsg: str, path: str):
        super().__init__(f"{path}: errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.path = path

    @property
    def kind(self) -> ErrorClass:
        return classify(self.errcode)

    @property
    def retry_after(self) -> float | None:
        return retry_after(self.errcode)


class WeComTransportError(Exception):
    """No usable answer: timeout, dropped connection, a non-200 status or a non-JSON body."""

    def __init__(self, path: str, reason: str, *, retryable: bool = True, status: int | None = None):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.retryable = retryable
        self.status = status


class WeComRateLimited(Exception):
    """Sending now would exceed a per-member limit that WeCom enforces by silently dropping."""

    def __init__(self, path: str, key: str, wait: float):
        super().__init__(f"{path}: {key} is at its send limit, wait {wait:.1f}s")
        self.path = path
        self.key = key
        self.retry_after = wait


def is_transient(error: BaseException) -> bool:
    """Whether another attempt may succeed (what the client's retry loop retries)."""
    if isinstance(error, WeComApiError):
        return error.kind == "retry"
    if isinstance(error, WeComTransportError):
        return error.retryable
    return False


def is_refused_transiently(error: BaseException) -> bool:
    """A transient refusal: the platform answered with an errcode, so nothing was done
    and trying again cannot duplicate anything (unlike a timeout, whose outcome is unknown)."""
    return isinstance(error, WeComApiError) and error.kind == "retry"


def outcome_unknown(error: BaseException) -> bool:
    """No answer that says whether the call was applied: a timeout, a dropped connection,
    a 5xx or an unreadable body. A 4xx or a refused connection never reached the API."""
    if not isinstance(error, WeComTransportError):
        return False
    return error.status is None or error.status >= 500
