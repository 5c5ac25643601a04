"""The official account's callback URL, in plaintext and in safe (encrypted) mode.

Every request carries `signature` = sha1(sorted token, timestamp, nonce). In safe and
compatible mode (`encrypt_type=aes`) the body's Encrypt field is checked with
`msg_signature` and decrypted with the same scheme as WeCom, the receive id being the
AppID; during a key change the previous key is tried after the current one.

With an `encoding_aes_key` configured, a POST without `encrypt_type=aes` is refused
(unless `accept_plaintext`): the plain signature covers only token, timestamp and nonce,
so one seen request would otherwise carry any body. A timestamp outside the replay
window, or a signature triple already seen within it (kept in the database, so every
process knows it), is refused too.
"""

from __future__ import annotations

import hmac
import time
from datetime import timedelta

from aiohttp import web

from bot.platforms.oa.updates import PLATFORM, to_update
from bot.platforms.wecom.crypto import BadSignature, CallbackCrypto, CallbackError, sha1_signature
from bot.platforms.wecom.xml import MalformedXml, parse_fields
from bot.shared.callbacks import refuse, store_update
from bot.shared.keys import SESSIONS
from storage import seen_callbacks
from storage.models import utcnow


class OfficialAccountCallback:
    def __init__(
        self, token: str, cryptos: list[CallbackCrypto], *, accept_plaintext: bool = False,
        replay_window: timedelta = timedelta(minutes=5),
    ):
        self._token = token
        self._cryptos = cryptos  # current key first, then the previous one
        self._accept_plaintext = accept_plaintext or not cryptos
        self._window = replay_window

    def _check_plain_signature(self, request: web.Request) -> None:
        signature = request.query.get("signature", "")
        timestamp, nonce = request.query.get("timestamp", ""), request.query.get("nonce", "")
        if not (signature and timestamp and nonce):
            raise self._refuse(request, web.HTTPBadRequest, "missing_query", "missing signature, timestamp or nonce")
        if not (signature.isascii() and hmac.compare_digest(sha1_signature(self._token, timestamp, nonce), signature)):
            raise self._refuse(request, web.HTTPForbidden, "bad_signature", "bad signature")

    def _refuse(
        self, request: web.Request, status: type[web.HTTPException], reason: str, detail: str
    ) -> web.HTTPException:
        refuse(request, PLATFORM, reason, detail)
        return status(text=detail)

    async def verify_url(self, request: web.Request) -> web.Response:
        self._check_plain_signature(request)
        echostr = request.query.get("echostr", "")
        if not echostr:
            raise self._refuse(request, web.HTTPBadRequest, "missing_query", "missing echostr")
        return web.Response(text=echostr)  # verbatim: the account's echo is not encrypted

    def _check_fresh(self, request: web.Request) -> None:
        timestamp = request.query.get("timestamp", "")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise self._refuse(request, web.HTTPBadRequest, "bad_timestamp", "timestamp is not a number of seconds")
        if abs(time.time() - int(timestamp)) > self._window.total_seconds():
            raise self._refuse(request, web.HTTPForbidden, "stale", "timestamp outside the replay window")

    async def receive(self, request: web.Request) -> web.Response:
        self._check_plain_signature(request)
        self._check_fresh(request)
        encrypted = request.query.get("encrypt_type", "raw") == "aes"
        if not encrypted and not self._accept_plaintext:
            raise self._refuse(
                request, web.HTTPForbidden, "plaintext", "plaintext callback refused: encoding_aes_key is configured"
            )
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # over server.max_body_bytes
            refuse(request, PLATFORM, "too_large", "body over server.max_body_bytes")
            raise
        try:
            fields = parse_fields(body)
            if encrypted:
                fields = parse_fields(self._decrypt(request, fields))
        except MalformedXml as error:
            raise self._refuse(request, web.HTTPBadRequest, "malformed_xml", f"malformed XML: {error}") from None
        except BadSignature:
            raise self._refuse(request, web.HTTPForbidden, "bad_signature", "bad msg_signature") from None
        except CallbackError as error:
            raise self._refuse(request, web.HTTPBadRequest, "undecryptable", f"rejected ({error.code})") from None
        if not fields.get("FromUserName") or not fields.get("MsgType"):
            raise self._refuse(request, web.HTTPBadRequest, "not_an_envelope", "not an official-account message")
        update = to_update(fields)
        sessions = request.app[SESSIONS]
        query = request.query
        digest = seen_callbacks.triple_digest(query["signature"], query["timestamp"], query["nonce"])
        if not await seen_callbacks.claim(sessions, PLATFORM, digest, utcnow(), self._window):
            raise self._refuse(request, web.HTTPForbidden, "replayed", "signature, timestamp and nonce seen before")
        try:
            await store_update(request.app, update)
        except BaseException:
            await seen_callbacks.release(sessions, PLATFORM, digest)  # the platform's retry must be taken
            raise
        # "success" tells the platform not to retry and shows the follower nothing.
        return web.Response(text="success")

    def _decrypt(self, request: web.Request, envelope: dict[str, str]) -> bytes:
        if not self._cryptos:
            raise CallbackError(-40004, "safe mode callback but no encoding_aes_key configured")
        encrypted = envelope.get("Encrypt")
        if not encrypted:
            raise MalformedXml("safe-mode envelope without Encrypt")
        signature = request.query.get("msg_signature", "")
        timestamp, nonce = request.query.get("timestamp", ""), request.query.get("nonce", "")
        failure: CallbackError | None = None
        for crypto in self._cryptos:
            try:
                return crypto.unwrap(signature, timestamp, nonce, encrypted)
            except BadSignature:
                raise
            except CallbackError as error:  # maybe encrypted with the previous key
                failure = error
        assert failure is not None
        raise failure
