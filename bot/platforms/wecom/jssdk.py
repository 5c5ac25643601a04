"""The JS-SDK signature (WECOM.md §9.1; doc 96909 「JS-SDK使用权限签名算法」), as pure functions.

`wx.config` is signed with the corp's jsapi_ticket and `wx.agentConfig` with the app's
(agent_config) ticket; the algorithm is the same: SHA-1 over
`jsapi_ticket=…&noncestr=…&timestamp=…&url=…`, keys in that order, values raw (no URL
encoding), the URL being the page's own without its `#fragment`.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from dataclasses import dataclass

NONCE_ALPHABET = string.ascii_letters + string.digits


def page_url(url: str) -> str:
    """The URL a signature covers: the page's, without the part after `#`."""
    return url.split("#", 1)[0]


def signature(ticket: str, nonce: str, timestamp: int, url: str) -> str:
    text = f"jsapi_ticket={ticket}&noncestr={nonce}&timestamp={timestamp}&url={page_url(url)}"
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def new_nonce(length: int = 16) -> str:
    return "".join(secrets.choice(NONCE_ALPHABET) for _ in range(length))


@dataclass(frozen=True, slots=True)
class Signed:
    """What the page passes to wx.config / wx.agentConfig besides the ids and API list."""

    timestamp: int
    nonce: str
    signature: str

    def as_json(self) -> dict[str, object]:
        return {"timestamp": self.timestamp, "nonceStr": self.nonce, "signature": self.signature}


def sign(ticket: str, url: str, now: int, nonce: str | None = None) -> Signed:
    nonce = nonce or new_nonce()
    return Signed(now, nonce, signature(ticket, nonce, now, url))
