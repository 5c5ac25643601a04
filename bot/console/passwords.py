"""Password hashes for console logins: scrypt (RFC 7914) from the standard library.

The stored form is `scrypt$N$r$p$salt$hash`, salt and hash in URL-safe base64, so the
cost can rise later without breaking the hashes already written in config files.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
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


# -- checking a login off the event loop ---------------------------------------------------

# scrypt takes tens of milliseconds of CPU and 16 MiB: at most this many run at once (in
# threads), so a flood of logins queues here instead of stalling every other request.
MAX_CONCURRENT_HASHES = max(1, min(4, os.cpu_count() or 1))
# Checked when the login is unknown (or holds only a token), so every attempt costs one
# scrypt and the answer's timing does not tell which logins exist.
_DECOY = hash_password(secrets.token_urlsafe(16))


def hashing_limit() -> asyncio.Semaphore:
    """One per application (a semaphore belongs to the loop that first waits on it)."""
    return asyncio.Semaphore(MAX_CONCURRENT_HASHES)


async def check_password(password: str, stored: str | None, limit: asyncio.Semaphore) -> bool:
    """`verify_password` in a worker thread, at most `limit` at once; with no stored
    hash a decoy is checked (and the answer is False) for the same cost."""
    async with limit:
        matched = await asyncio.to_thread(verify_password, password, stored or _DECOY)
    return matched and stored is not None
