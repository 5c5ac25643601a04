"""What WeCom's callback crypto costs per call, against the library calls it wraps.

Times `CallbackCrypto` on a 600-byte event (best of --repeat × --calls, `timeit`), beside
two in-run baselines: Base64 and AES-256-CBC alone through `cryptography` on the same
ciphertext (no padding, header or receive-id checks), and sha1 alone of the four parts
already joined. Prints the date and the machine's load, since the machine is shared.

    .venv/bin/python bench/callback_crypto.py [--calls 20000] [--repeat 9]
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import os
import sys
import timeit
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402

from bot.platforms.wecom.crypto import CallbackCrypto, sha1_signature  # noqa: E402

TOKEN, CORP, TIMESTAMP, NONCE = "QDG6eK", "wx5823bf96d3bd56c7", "1409659813", "1372623149"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


def an_event_of_600_bytes() -> bytes:
    event = ("<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
             "<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1403610513</CreateTime>"
             "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event>"
             "<ChangeType><![CDATA[add_external_contact]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID>"
             "<ExternalUserID><![CDATA[woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA]]></ExternalUserID>"
             "<State><![CDATA[store-017]]></State>"
             "<WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode></xml>")
    return event.ljust(600).encode("ascii")


def bare_decrypt(key: bytes) -> object:
    cipher = Cipher(algorithms.AES(key), modes.CBC(key[:16]))

    def decrypt(encrypted: str) -> bytes:
        decryptor = cipher.decryptor()
        return decryptor.update(binascii.a2b_base64(encrypted)) + decryptor.finalize()

    return decrypt


def microseconds(statement: object, calls: int, repeat: int) -> float:
    return min(timeit.repeat(statement, number=calls, repeat=repeat)) / calls * 1e6


def main(calls: int, repeat: int) -> None:
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP)
    event = an_event_of_600_bytes()
    encrypted = crypto.encrypt(event)
    signature = sha1_signature(TOKEN, TIMESTAMP, NONCE, encrypted)
    joined = "".join(sorted((TOKEN, TIMESTAMP, NONCE, encrypted))).encode()
    decrypt_alone = bare_decrypt(base64.b64decode(AES_KEY + "="))
    assert crypto.unwrap(signature, TIMESTAMP, NONCE, encrypted) == event
    rows = [
        ("baseline: Base64 + AES-CBC alone (cryptography)", lambda: decrypt_alone(encrypted)),
        ("baseline: sha1 of the joined parts alone", lambda: hashlib.sha1(joined).hexdigest()),
        ("decrypt", lambda: crypto.decrypt(encrypted)),
        ("verify signature", lambda: crypto.verify(signature, TIMESTAMP, NONCE, encrypted)),
        ("unwrap (verify + decrypt)", lambda: crypto.unwrap(signature, TIMESTAMP, NONCE, encrypted)),
        ("encrypt", lambda: crypto.encrypt(event)),
        ("signed passive reply", lambda: crypto.signed_reply(event, TIMESTAMP, NONCE)),
    ]
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{now}, load average {os.getloadavg()[0]:.1f}, {len(event)}-byte event, best of {repeat} × {calls:,} calls")
    for name, statement in rows:
        print(f"  {name}: {microseconds(statement, calls, repeat):.2f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=9)
    arguments = parser.parse_args()
    main(arguments.calls, arguments.repeat)
