"""Callback crypto of WeCom and of the official account's safe mode (WECOM.md §1, §5).

Scheme: msg_signature = sha1 of the sorted [token, timestamp, nonce, Encrypt], and
Encrypt = Base64(AES-256-CBC(key, IV = key[:16],
          PKCS#7-to-32(random16 + len(msg) as uint32 big-endian + msg + receive_id))).

Pure functions of their inputs (no I/O, no clock), so a callback route can call them
inline: a decrypt of a typical message costs a few microseconds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.padding import PKCS7

# EncodingAESKey: 43 characters of [A-Za-z0-9], the Base64 of 32 bytes without its '='.
_AES_KEY = re.compile(r"[A-Za-z0-9]{43}")
# The official samples pad to 32 bytes, not to AES's 16, so pad values run 1..32;
# PKCS7(128) would reject the valid pads 17..32.
_PADDING = PKCS7(256)
_RANDOM_LEN = 16
_HEADER_LEN = _RANDOM_LEN + 4  # random bytes + the 4-byte length of msg


class CallbackError(Exception):
    """A callback that must be rejected. `code` is the official sample's return code (-40001…)."""

    code: int

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)  # str(error) is the reason; callers log the code beside it
        self.code = code
        self.reason = reason


class _Fixed(CallbackError):
    code = 0  # each subclass sets its code (WECOM.md §1.7)

    def __init__(self, reason: str) -> None:
        super().__init__(type(self).code, reason)


class BadSignature(_Fixed):
    """The msg_signature does not match (ValidateSignature_Error)."""

    code = -40001


class BadAesKey(_Fixed):
    """The EncodingAESKey is not 43 [A-Za-z0-9] characters (IllegalAesKey)."""

    code = -40004


class ReceiveIdMismatch(_Fixed):
    """The message was sealed for another corp, suite or app (ValidateCorpid_Error)."""

    code = -40005


class DecryptFailed(_Fixed):
    """The ciphertext is not whole AES blocks (DecryptAES_Error)."""

    code = -40007


class BadPlaintext(_Fixed):
    """The decrypted buffer is not padding-and-layout as expected (IllegalBuffer)."""

    code = -40008


class BadBase64(_Fixed):
    """The ciphertext is not Base64 (DecodeBase64_Error)."""

    code = -40010


def sha1_signature(*parts: str) -> str:
    """sha1 of the lexicographically sorted parts joined, lower-case hex (WECOM.md §1.4).

    With 4 parts it is msg_signature; with 3 (token, timestamp, nonce) it is the official
    account's plaintext-mode `signature` (§5).
    """
    # surrogatepass: a query value decoded with surrogate escapes must give a mismatch, not a crash
    joined = "".join(sorted(parts)).encode("utf-8", "surrogatepass")
    return hashlib.sha1(joined).hexdigest()


class CallbackCrypto:
    """Token + EncodingAESKey + receive id of one callback URL.

    receive_id is what the sender seals into each message: the CorpID for a corp's own
    app, the suite id for a third-party suite, "" for an individual's third-party app,
    the AppID for the official account (WECOM.md §1.5, §5).
    """

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if not isinstance(encoding_aes_key, str) or not _AES_KEY.fullmatch(encoding_aes_key):
            raise BadAesKey("EncodingAESKey must be 43 characters of [A-Za-z0-9]")
        # Lenient decode on purpose: the official sample keys are non-canonical Base64 (the
        # last character carries 2 stray low bits), which strict decoders reject.
        key = base64.b64decode(encoding_aes_key + "=")
        if len(key) != 32:  # cannot happen for 43 alphabet characters; kept as the invariant
            raise BadAesKey("EncodingAESKey does not decode to 32 bytes")
        self._token = token
        self._receive_id = receive_id.encode("utf-8")
        # A Cipher is immutable and reusable; only its encryptor/decryptor contexts are per message.
        self._cipher = Cipher(algorithms.AES(key), modes.CBC(key[:16]))

    def verify(self, signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        """Check msg_signature over the ciphertext; raises BadSignature."""
        expected = sha1_signature(self._token, timestamp, nonce, encrypted)
        # compare_digest wants ASCII on both sides; a non-ASCII signature is simply wrong.
        if not (signature.isascii() and hmac.compare_digest(expected, signature)):
            raise BadSignature("msg_signature does not match")

    def decrypt(self, encrypted: str) -> bytes:
        """The msg inside a ciphertext (UTF-8 XML or JSON, as bytes); raises a CallbackError."""
        try:
            # Strict: the sender's Base64 is canonical, and a space here means a '+' that
            # got form-decoded on the way — better refused than silently mis-decoded.
            raw = binascii.a2b_base64(encrypted, strict_mode=True)
        except (binascii.Error, ValueError) as error:  # ValueError: non-ASCII text
            raise BadBase64(f"ciphertext is not Base64: {error}") from None
        if not raw or len(raw) % 16:
            raise DecryptFailed(f"ciphertext of {len(raw)} bytes is not whole AES blocks")
        decryptor = self._cipher.decryptor()
        try:
            padded = decryptor.update(raw) + decryptor.finalize()
        except ValueError as error:
            raise DecryptFailed(f"AES failed: {error}") from None
        # Padding errors can only be told apart after the signature has passed (unwrap
        # verifies first), so they are no padding oracle to an outsider without the token.
        unpadder = _PADDING.unpadder()
        try:
            plain = unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise BadPlaintext("bad PKCS#7 padding (block 32)") from None
        # A plaintext shorter than its 20-byte header fails here too: end is at least 20.
        end = _HEADER_LEN + int.from_bytes(plain[_RANDOM_LEN:_HEADER_LEN], "big")
        if end > len(plain):
            raise BadPlaintext("length field runs past the plaintext")
        if plain[end:] != self._receive_id:
            raise ReceiveIdMismatch("receive id does not match this callback's")
        return plain[_HEADER_LEN:end]

    def encrypt(self, message: bytes, random_prefix: bytes | None = None) -> str:
        """The Encrypt value for message; random_prefix (16 bytes) is fixed only by tests."""
        prefix = os.urandom(_RANDOM_LEN) if random_prefix is None else random_prefix
        if len(prefix) != _RANDOM_LEN:
            raise ValueError(f"random_prefix must be {_RANDOM_LEN} bytes")
        padder = _PADDING.padder()
        padded = (
            padder.update(b"".join((prefix, len(message).to_bytes(4, "big"), message, self._receive_id)))
            + padder.finalize()
        )
        encryptor = self._cipher.encryptor()
        return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")

    def signed_reply(
        self, message: bytes, timestamp: str, nonce: str, *, random_prefix: bytes | None = None
    ) -> str:
        """The encrypted passive-reply XML envelope of WECOM.md §1.6 (signature over the new ciphertext)."""
        # Both go into the XML unescaped; every documented sender uses digits (and DingTalk
        # letters), so anything else is refused rather than escaped.
        if not (timestamp.isascii() and timestamp.isdigit()):
            raise ValueError("timestamp must be ASCII digits")
        if not (nonce.isascii() and nonce.isalnum()):
            raise ValueError("nonce must be ASCII letters and digits")
        encrypted = self.encrypt(message, random_prefix)
        signature = sha1_signature(self._token, timestamp, nonce, encrypted)
        return (
            f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{signature}]]></MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp>"
            f"<Nonce><![CDATA[{nonce}]]></Nonce></xml>"
        )

    def unwrap(self, signature: str, timestamp: str, nonce: str, encrypted: str) -> bytes:
        """Verify, then decrypt: what a callback route calls (GET echostr and POST Encrypt alike)."""
        self.verify(signature, timestamp, nonce, encrypted)
        return self.decrypt(encrypted)
