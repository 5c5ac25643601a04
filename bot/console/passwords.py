"""Password hashes for console logins: scrypt (RFC 7914) from the standard library.

The stored form is `scrypt$N$r$p$salt$hash`, salt and hash in URL-safe base64, so the
cost can rise later without breaking the hashes already written in config files.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from bot.settings.console import PASSWORD_HASH

COST, BLOCK, PARALLEL = 2**14, 8, 1
LENGTH = 32


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=COST, r=BLOCK, p=PARALLEL, dklen=LENGTH)
    return f"scrypt${COST}${BLOCK}${PARALLEL}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    found = PASSWORD_HASH.fullmatch(stored)
    if found is None:
        return False
    n, r, p = (int(found.group(i)) for i in (1, 2, 3))
    try:
        salt, expected = base64.urlsafe_b64decode(found.group(4)), base64.urlsafe_b64decode(found.group(5))
        digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=len(expected),
                                maxmem=128 * n * r * p + 1024 * 1024)
    except ValueError:  # damaged base64 (binascii.Error is one) or impossible costs
        return False
    return hmac.compare_digest(digest, expected)
