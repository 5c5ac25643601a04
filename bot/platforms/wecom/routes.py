"""The WeCom callback URL: verification (GET) and encrypted messages and events (POST).

The POST path is the hot path: verify, decrypt, parse, store in the inbox, answer an
empty 200 — milliseconds, well inside WeCom's 5 s. Handling happens after, in the
dispatcher. Anything rejected is logged (never with secrets) and stored nowhere.
"""

from __future__ import annotations

import time

from aiohttp import web

from bot.platforms.wecom.crypto import BadSignature, CallbackCrypto, CallbackError
from bot.platforms.wecom.updates import PLATFORM, to_update
from bot.platforms.wecom.xml import MalformedXml, parse_fields
from bot.shared.callbacks import refuse, store_update

ENVELOPE_FIELDS = {"ToUserName", "AgentID", "Encrypt"}


def _query(request: web.Request, *names: str) -> list[str]:
    query = request.query
    values = [query.get(name, "") for name in names]
    if not all(values):
        missing = ", ".join(name for name, value in zip(names, values) if not value)
        _reject(request, "missing_query", f"missing query parameter(s): {missing}")
        raise web.HTTPBadRequest(text=f"missing {missing}")
    return values


def _reject(request: web.Request, reason: str, detail: str) -> None:
    refuse(request, PLATFORM, reason, detail)


def _refused(request: web.Request, error: CallbackError) -> web.HTTPException:
    if isinstance(error, BadSignature):
        _reject(request, "bad_signature", f"{error.code} {error}")
        return web.HTTPForbidden(text="bad signature")
    _reject(request, "undecryptable", f"{error.code} {error}")
    return web.HTTPBadRequest(text=f"rejected ({error.code})")


class WeComCallback:
    def __init__(self, crypto: CallbackCrypto, replay_window_seconds: int = 0):
        self._crypto = crypto
        self._replay_window = replay_window_seconds

    async def verify_url(self, request: web.Request) -> web.Response:
        signature, timestamp, nonce, echostr = _query(request, "msg_signature", "timestamp", "nonce", "echostr")
        # The query is already URL-decoded; a '+' the sender failed to escape arrives as
        # a space, and Base64 has no spaces.
        echostr = echostr.replace(" ", "+")
        try:
            plain = self._crypto.unwrap(signature, timestamp, nonce, echostr)
        except CallbackError as error:
            raise _refused(request, error) from None
        return web.Response(body=plain, content_type="text/plain")

    async def receive(self, request: web.Request) -> web.Response:
        signature, timestamp, nonce = _query(request, "msg_signature", "timestamp", "nonce")
        if self._replay_window and not _fresh(timestamp, self._replay_window):
            _reject(request, "stale_timestamp", f"timestamp {timestamp} outside the replay window")
            raise web.HTTPForbidden(text="stale timestamp")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # over server.max_body_bytes
            _reject(request, "too_large", "body over server.max_body_bytes")
            raise
        try:
            envelope = parse_fields(body)
        except MalformedXml as error:
            _reject(request, "malformed_xml", str(error))
            raise web.HTTPBadRequest(text="malformed XML") from None
        if "Encrypt" not in envelope or not set(envelope) <= ENVELOPE_FIELDS:
            _reject(request, "not_an_envelope", f"not a WeCom envelope: fields {sorted(envelope)}")
            raise web.HTTPBadRequest(text="not a WeCom envelope")
        try:
            plain = self._crypto.unwrap(signature, timestamp, nonce, envelope["Encrypt"])
            fields = parse_fields(plain)
        except CallbackError as error:
            raise _refused(request, error) from None
        except MalformedXml as error:
            _reject(request, "malformed_message", f"decrypted message: {error}")
            raise web.HTTPBadRequest(text="malformed message") from None
        await store_update(request.app, to_update(fields))
        return web.Response(status=200, body=b"")  # empty: no passive reply; WeCom won't retry


def _fresh(timestamp: str, window: int) -> bool:
    try:
        return abs(time.time() - int(timestamp)) <= window
    except ValueError:
        return False
