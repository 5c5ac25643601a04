"""The official account's callback URL, in plaintext and in safe (encrypted) mode.

Every request carries `signature` = sha1(sorted token, timestamp, nonce). In safe and
compatible mode (`encrypt_type=aes`) the body's Encrypt field is checked with
`msg_signature` and decrypted with the same scheme as WeCom, the receive id being the
AppID; during a key change the previous key is tried after the current one.
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web

from bot.platforms.oa.updates import PLATFORM, to_update
from bot.platforms.wecom.crypto import BadSignature, CallbackCrypto, CallbackError, sha1_signature
from bot.platforms.wecom.xml import MalformedXml, parse_fields
from bot.shared.keys import INBOX
from handlers.updates import to_payload
from storage.inbox import NewInboxEntry

log = logging.getLogger(__name__)


class OfficialAccountCallback:
    def __init__(self, token: str, cryptos: list[CallbackCrypto]):
        self._token = token
        self._cryptos = cryptos  # current key first, then the previous one

    def _check_plain_signature(self, request: web.Request) -> None:
        signature = request.query.get("signature", "")
        timestamp, nonce = request.query.get("timestamp", ""), request.query.get("nonce", "")
        if not (signature and timestamp and nonce):
            raise self._refuse(request, web.HTTPBadRequest, "missing signature, timestamp or nonce")
        if not (signature.isascii() and hmac.compare_digest(sha1_signature(self._token, timestamp, nonce), signature)):
            raise self._refuse(request, web.HTTPForbidden, "bad signature")

    def _refuse(self, request: web.Request, status: type[web.HTTPException], reason: str) -> web.HTTPException:
        log.warning("rejected official-account callback from %s: %s", request.remote, reason)
        return status(text=reason)

    async def verify_url(self, request: web.Request) -> web.Response:
        self._check_plain_signature(request)
        echostr = request.query.get("echostr", "")
        if not echostr:
            raise self._refuse(request, web.HTTPBadRequest, "missing echostr")
        return web.Response(text=echostr)  # verbatim: the account's echo is not encrypted

    async def receive(self, request: web.Request) -> web.Response:
        self._check_plain_signature(request)
        body = await request.read()
        try:
            fields = parse_fields(body)
            if request.query.get("encrypt_type", "raw") == "aes":
                fields = parse_fields(self._decrypt(request, fields))
        except MalformedXml as error:
            raise self._refuse(request, web.HTTPBadRequest, f"malformed XML: {error}") from None
        except BadSignature:
            raise self._refuse(request, web.HTTPForbidden, "bad msg_signature") from None
        except CallbackError as error:
            raise self._refuse(request, web.HTTPBadRequest, f"rejected ({error.code})") from None
        if not fields.get("FromUserName") or not fields.get("MsgType"):
            raise self._refuse(request, web.HTTPBadRequest, "not an official-account message")
        update = to_update(fields)
        await request.app[INBOX].add(NewInboxEntry(update.key, PLATFORM, update.sender, to_payload(update)))
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
