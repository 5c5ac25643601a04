"""The WeCom / official-account callback crypto: published vectors, wechatpy cross-checks, edge cases.

Published vectors (test data only, from public repositories):
- DOC-91144 worked example (token QDG6eK): sbzhu/weworkapi_php `callback/Sample.php` (signature, Encrypt, and the
  plaintext in its comment), also sbzhu/weworkapi_golang `sample.go` (same request, and the GET echostr example).
- Tencent's Python sample with its own key: sbzhu/weworkapi_python `callback/Sample.py`.
- wechatpy/wechatpy `tests/test_crypto.py` (token 123456): echostr, decrypt (its padding is 1) and the encrypted
  reply with the fixed random prefix "1234567890123456".
- Official-account sample (token spamtest, AppID wx2c2769f8efd9abc2): conetse/WXBizMsgCrypt `README.md`.
- Official-account Java sample test (AppID wxb11529c136998cb6, random "aaaabbbbccccdddd"):
  chanjarster/weixin-java-tools `weixin-java-common/src/test/java/me/chanjar/weixin/common/util/crypto/WxCryptUtilTest.java`.
- Official-account plaintext signature: developers.weixin.qq.com
  `doc/oplatform/Website_App/WeChat_Login/message_push.html` (WECOM.md §5).
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest
import wechatpy.crypto as wechatpy_mp
import wechatpy.enterprise.crypto as wechatpy_work
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.padding import PKCS7
from wechatpy.utils import WeChatSigner

from bot.platforms.wecom.crypto import (
    BadAesKey,
    BadBase64,
    BadPlaintext,
    BadSignature,
    CallbackCrypto,
    CallbackError,
    DecryptFailed,
    ReceiveIdMismatch,
    sha1_signature,
)

# --- published vectors ---------------------------------------------------------------------------

DOC_TOKEN = "QDG6eK"
DOC_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"  # non-canonical Base64: 'C' carries 2 stray bits
DOC_CORP = "wx5823bf96d3bd56c7"
DOC_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUk"
    "SUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekU"
    "NXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rU"
    "PA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+"
    "qN+E7Q=="
)
DOC_PLAIN = (
    b"<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n<FromUserName><![CDATA[mycreate]]></FromUserName>\n"
    b"<CreateTime>1409659813</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n"
    b"<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>"
)

PYS_TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
PYS_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
PYS_CORP = "ww1436e0e65a779aee"

WP_TOKEN = "123456"
WP_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
WP_CORP = "wx49f0ab532d5d035a"
WP_REPLY = (
    "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
    "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n"
    "<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>"
)
WP_REPLY_ENCRYPT = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ"
    "+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p"
    "9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kF"
    "xtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
)
WP_REPLY_SIGNATURE = "407518b7649e86ef23978113f92d27afa9296533"

MP_TOKEN = "spamtest"
MP_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
MP_APPID = "wx2c2769f8efd9abc2"

JAVA_TOKEN = "pamtest"
JAVA_APPID = "wxb11529c136998cb6"
JAVA_RANDOM = b"aaaabbbbccccdddd"
JAVA_MSG = "我是中文abcd123"
JAVA_ENCRYPT = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
JAVA_MSG2 = (
    "<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName><FromUserName><![CDATA[gh_7f083739789a]]>"
    "</FromUserName><CreateTime>1407743423</CreateTime><MsgType><![CDATA[video]]></MsgType><Video><MediaId><![CDATA["
    "eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71s79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0]]></MediaId><Title><![CDATA[testCallBackReplyVideo]]>"
    "</Title><Description><![CDATA[testCallBackReplyVideo]]></Description></Video></xml>"
)
JAVA_ENCRYPT2 = (
    "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesxlkupqcEcW7ZQweImX9+wLMa0GaUz"
    "pkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8HLXa5nQvFb3tYPKAlHF3rtTeayNf0QuM+UW/wM9enGIDIJHF7CLHiDNAY"
    "xr+r+OrJCmPQyTy8cVWlu9iSvOHPT/77bZqJucQHQ04sq7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ44Yfe"
    "EuZ+xRTQwr92vhA9OxchWVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042OlUb1/slTwo4RscuQ+RdxSGvDahxAJ6+EA"
    "jLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqmA7FNERspKA5f8GoJ9sv8xmGvZ9Yrf57cExWtnX8aCMMaBropU/1k+hKP5LVd"
    "zbWCG0hGwx/dQudYR/eXp3P0XxjlFiy+9DMlaFExWUZQDajPkdPrEeOwofJb"
)


@dataclass(frozen=True)
class Callback:
    """One published callback request: the URL's parameters and the sender's config."""

    token: str
    key: str
    receive_id: str
    signature: str
    timestamp: str
    nonce: str
    encrypted: str


PUBLISHED = {
    # sbzhu/weworkapi_php callback/Sample.php — the DOC-91144 worked example (POST).
    "doc91144_post": Callback(
        DOC_TOKEN, DOC_KEY, DOC_CORP, "477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149", DOC_ENCRYPT
    ),
    # sbzhu/weworkapi_golang sample.go (also Sample.php) — GET verification; the query's echostr URL-decoded.
    "doc_get_echostr": Callback(
        DOC_TOKEN, DOC_KEY, DOC_CORP, "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780",
        "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
    ),
    # sbzhu/weworkapi_python callback/Sample.py — VerifyURL.
    "pysample_get_echostr": Callback(
        PYS_TOKEN, PYS_KEY, PYS_CORP, "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", "1476416373", "47744683",
        "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==",
    ),
    # sbzhu/weworkapi_python callback/Sample.py — DecryptMsg (Content 你好: multi-byte UTF-8 from the sender).
    "pysample_post": Callback(
        PYS_TOKEN, PYS_KEY, PYS_CORP, "0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212914",
        "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkY"
        "cD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka"
        "7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49H"
        "KYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+",
    ),
    # wechatpy/wechatpy tests/test_crypto.py — test_check_signature_should_ok.
    "wechatpy_echostr": Callback(
        WP_TOKEN, WP_KEY, WP_CORP, "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374425",
        "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==",
    ),
    # wechatpy/wechatpy tests/test_crypto.py — test_decrypt_message (padding 1).
    "wechatpy_post_pad1": Callback(
        WP_TOKEN, WP_KEY, WP_CORP, "74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525903", "461056294",
        "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6y"
        "dJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/T"
        "ywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5"
        "t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=",
    ),
    # conetse/WXBizMsgCrypt README.md — the official account's sample, receive id = AppID.
    "official_account_post": Callback(
        MP_TOKEN, MP_KEY, MP_APPID, "5d197aaffba7e9b25a30732f161a50dee96bd5fa", "1409735669", "1320562132",
        "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXp"
        "bUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlp"
        "Kn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1"
        "DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=",
    ),
}


# --- helpers that bypass our module --------------------------------------------------------------


def _aes(key43: str) -> Cipher[modes.CBC]:
    key = base64.b64decode(key43 + "=")
    return Cipher(algorithms.AES(key), modes.CBC(key[:16]))


def raw_plaintext(key43: str, encrypted: str) -> bytes:
    """AES-decrypt without unpadding or parsing: to look at the padding and the length field."""
    decryptor = _aes(key43).decryptor()
    return decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()


def raw_ciphertext(key43: str, plaintext: bytes) -> str:
    """AES-encrypt an already-laid-out plaintext (whole blocks): to craft broken messages."""
    encryptor = _aes(key43).encryptor()
    return base64.b64encode(encryptor.update(plaintext) + encryptor.finalize()).decode()


def pad32(body: bytes) -> bytes:
    """PKCS#7 with 32-byte blocks, as the senders pad."""
    padder = PKCS7(256).padder()
    return padder.update(body) + padder.finalize()


def message_for_padding(pad: int, receive_id: str) -> bytes:
    """A message whose padded plaintext (16 + 4 + msg + receive id) needs exactly `pad` bytes of padding."""
    unpadded = 20 + len(receive_id.encode())
    size = (32 - pad - unpadded) % 32
    return ("好" * (size // 3) + "x" * (size % 3)).encode()


def wechatpy_signature(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def envelope_fields(xml: str) -> dict[str, str]:
    return {child.tag: child.text or "" for child in ET.fromstring(xml)}


@pytest.fixture
def doc() -> CallbackCrypto:
    return CallbackCrypto(DOC_TOKEN, DOC_KEY, DOC_CORP)


# --- signatures ----------------------------------------------------------------------------------


def test_signature_of_the_doc_91144_worked_example() -> None:
    assert (
        sha1_signature("1372623149", "1409659813", "QDG6eK", DOC_ENCRYPT) == "477715d11cdb4164915debcba66cb864d751f3e6"
    )
    # The order of the parts does not matter: they are sorted (digits before letters).
    assert sha1_signature(DOC_ENCRYPT, "QDG6eK", "1409659813", "1372623149") == sha1_signature(
        "1372623149", "1409659813", "QDG6eK", DOC_ENCRYPT
    )


def test_official_account_plaintext_signature() -> None:
    assert sha1_signature("AAAAA", "1714036504", "1514711492") == "f464b24fc39322e44b38aa78f5edd27bd1441696"


def test_signature_agrees_with_wechatpy() -> None:
    parts = ("tok", "1700000000", "n0nce", "c2VjcmV0K2Jhc2U2NC8=")
    assert sha1_signature(*parts) == wechatpy_signature(*parts)


# --- published vectors ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_callbacks_verify_and_decrypt_as_wechatpy_does(name: str) -> None:
    cb = PUBLISHED[name]
    plain = CallbackCrypto(cb.token, cb.key, cb.receive_id).unwrap(cb.signature, cb.timestamp, cb.nonce, cb.encrypted)
    wechatpy_class = wechatpy_mp.WeChatCrypto if name.startswith("official") else wechatpy_work.WeChatCrypto
    theirs = wechatpy_class(cb.token, cb.key, cb.receive_id).decrypt_message(
        {"Encrypt": cb.encrypted}, cb.signature, cb.timestamp, cb.nonce
    )
    assert plain.decode() == theirs


def test_doc_91144_plaintext_is_the_published_one(doc: CallbackCrypto) -> None:
    cb = PUBLISHED["doc91144_post"]
    assert doc.unwrap(cb.signature, cb.timestamp, cb.nonce, cb.encrypted) == DOC_PLAIN


@pytest.mark.parametrize("name", ["doc_get_echostr", "pysample_get_echostr", "wechatpy_echostr"])
def test_published_echostr_decrypts_to_the_digits_to_echo(name: str) -> None:
    cb = PUBLISHED[name]
    plain = CallbackCrypto(cb.token, cb.key, cb.receive_id).unwrap(cb.signature, cb.timestamp, cb.nonce, cb.encrypted)
    assert plain.isdigit()
    assert plain.decode() == wechatpy_work.WeChatCrypto(cb.token, cb.key, cb.receive_id).check_signature(
        cb.signature, cb.timestamp, cb.nonce, cb.encrypted
    )


def test_wechatpy_decrypt_vector_has_padding_1_and_its_fields() -> None:
    cb = PUBLISHED["wechatpy_post_pad1"]
    assert raw_plaintext(cb.key, cb.encrypted)[-1] == 1
    fields = envelope_fields(CallbackCrypto(cb.token, cb.key, cb.receive_id).decrypt(cb.encrypted).decode())
    assert (fields["Content"], fields["FromUserName"]) == ("test", "messense")


def test_official_account_safe_mode_vector_uses_the_appid_as_receive_id() -> None:
    cb = PUBLISHED["official_account_post"]
    fields = envelope_fields(CallbackCrypto(cb.token, cb.key, MP_APPID).decrypt(cb.encrypted).decode())
    # The same README shows these fields in plaintext beside Encrypt (compatible mode).
    assert fields == {
        "ToUserName": "gh_10f6c3c3ac5a",
        "FromUserName": "oyORnuP8q7ou2gfYjqLzSIWZf0rs",
        "CreateTime": "1409735668",
        "MsgType": "text",
        "Content": "abcdteT",
        "MsgId": "6054768590064713728",
    }
    with pytest.raises(ReceiveIdMismatch):
        CallbackCrypto(cb.token, cb.key, "wx0000000000000000").decrypt(cb.encrypted)


def test_encrypt_reproduces_wechatpy_published_reply(monkeypatch: pytest.MonkeyPatch) -> None:
    ours = CallbackCrypto(WP_TOKEN, WP_KEY, WP_CORP)
    assert ours.encrypt(WP_REPLY.encode(), random_prefix=b"1234567890123456") == WP_REPLY_ENCRYPT
    reply = ours.signed_reply(WP_REPLY.encode(), "1411525903", "461056294", random_prefix=b"1234567890123456")
    assert reply == (
        f"<xml><Encrypt><![CDATA[{WP_REPLY_ENCRYPT}]]></Encrypt>"
        f"<MsgSignature><![CDATA[{WP_REPLY_SIGNATURE}]]></MsgSignature>"
        "<TimeStamp>1411525903</TimeStamp><Nonce><![CDATA[461056294]]></Nonce></xml>"
    )
    # The installed wechatpy, given the same random prefix, still produces the published values.
    monkeypatch.setattr(wechatpy_work.PrpCrypto, "get_random_string", lambda self: "1234567890123456")
    theirs = wechatpy_work.WeChatCrypto(WP_TOKEN, WP_KEY, WP_CORP).encrypt_message(WP_REPLY, "461056294", "1411525903")
    assert envelope_fields(theirs) == envelope_fields(reply)


@pytest.mark.parametrize(("message", "expected"), [(JAVA_MSG, JAVA_ENCRYPT), (JAVA_MSG2, JAVA_ENCRYPT2)])
def test_encrypt_reproduces_the_official_account_java_sample(message: str, expected: str) -> None:
    ours = CallbackCrypto(JAVA_TOKEN, MP_KEY, JAVA_APPID)
    assert ours.encrypt(message.encode(), random_prefix=JAVA_RANDOM) == expected
    assert ours.decrypt(expected).decode() == message


# --- cross-checks with wechatpy (an independent implementation) ----------------------------------

MESSAGES = {
    "xml": b"<xml><ToUserName><![CDATA[ww1]]></ToUserName><Content><![CDATA[hello]]></Content></xml>",
    "chinese_and_emoji": "<xml><Content><![CDATA[你好，欢迎光临禾麦烘焙 🍞🎂]]></Content></xml>".encode(),
    "json": '{"tousername":"ww1","content":"早安 ☕"}'.encode(),
    "empty": b"",
    "pad_1": message_for_padding(1, DOC_CORP),
    "pad_32": message_for_padding(32, DOC_CORP),
    "long": ("<xml><Content><![CDATA[" + "长文本" * 400 + "]]></Content></xml>").encode(),
}


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_wechatpy_encrypts_we_verify_and_decrypt(name: str, doc: CallbackCrypto) -> None:
    message = MESSAGES[name]
    reply = wechatpy_work.WeChatCrypto(DOC_TOKEN, DOC_KEY, DOC_CORP).encrypt_message(
        message.decode(), "1372623149", "1409659813"
    )
    fields = envelope_fields(reply)
    assert doc.unwrap(fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"], fields["Encrypt"]) == message


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_we_encrypt_wechatpy_verifies_and_decrypts(name: str, doc: CallbackCrypto) -> None:
    message = MESSAGES[name]
    reply = doc.signed_reply(message, "1409659813", "1372623149")
    theirs = wechatpy_work.WeChatCrypto(DOC_TOKEN, DOC_KEY, DOC_CORP)
    assert theirs.decrypt_message(reply, envelope_fields(reply)["MsgSignature"], "1409659813", "1372623149") == (
        message.decode()
    )


def test_echostr_handshake_both_ways(doc: CallbackCrypto) -> None:
    theirs = wechatpy_work.WeChatCrypto(DOC_TOKEN, DOC_KEY, DOC_CORP)
    timestamp, nonce, echo = "1409659589", "263014780", "1616140317555161061"
    # Ours seals an echostr; wechatpy's check_signature verifies and opens it.
    sealed = doc.encrypt(echo.encode())
    assert theirs.check_signature(sha1_signature(DOC_TOKEN, timestamp, nonce, sealed), timestamp, nonce, sealed) == echo
    # wechatpy seals one; ours verifies and opens it.
    sealed = wechatpy_work.PrpCrypto(theirs.key).encrypt(echo, DOC_CORP).decode()
    assert doc.unwrap(wechatpy_signature(DOC_TOKEN, timestamp, nonce, sealed), timestamp, nonce, sealed) == echo.encode()


@pytest.mark.parametrize("name", ["xml", "chinese_and_emoji"])
def test_official_account_safe_mode_both_ways(name: str) -> None:
    message = MESSAGES[name]
    ours = CallbackCrypto(MP_TOKEN, MP_KEY, MP_APPID)
    theirs = wechatpy_mp.WeChatCrypto(MP_TOKEN, MP_KEY, MP_APPID)
    fields = envelope_fields(theirs.encrypt_message(message.decode(), "1320562132", "1409735669"))
    assert ours.unwrap(fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"], fields["Encrypt"]) == message
    reply = ours.signed_reply(message, "1409735669", "1320562132")
    signature = envelope_fields(reply)["MsgSignature"]
    assert theirs.decrypt_message(reply, signature, "1409735669", "1320562132") == message.decode()


def test_message_for_another_corp_is_refused() -> None:
    sealed = wechatpy_work.PrpCrypto(base64.b64decode(DOC_KEY + "=")).encrypt("hi", "ww_other_corp").decode()
    with pytest.raises(ReceiveIdMismatch) as caught:
        CallbackCrypto(DOC_TOKEN, DOC_KEY, DOC_CORP).decrypt(sealed)
    assert caught.value.code == -40005


# --- edge cases ----------------------------------------------------------------------------------


@pytest.mark.parametrize("pad", [1, 32])
def test_padding_extremes(pad: int, doc: CallbackCrypto) -> None:
    message = message_for_padding(pad, DOC_CORP)
    sealed = doc.encrypt(message)
    padded = raw_plaintext(DOC_KEY, sealed)
    assert padded[-pad:] == bytes([pad]) * pad and len(padded) % 32 == 0
    assert doc.decrypt(sealed) == message


def test_a_16_byte_unpadder_would_reject_padding_32(doc: CallbackCrypto) -> None:
    # Why the module pads with PKCS7(256): a standard AES (128-bit) unpadder refuses pad 17..32.
    padded = raw_plaintext(DOC_KEY, doc.encrypt(message_for_padding(32, DOC_CORP)))
    unpadder = PKCS7(128).unpadder()
    with pytest.raises(ValueError):
        unpadder.update(padded) + unpadder.finalize()


def test_multibyte_utf8_length_field_counts_bytes(doc: CallbackCrypto) -> None:
    message = "新品上市🎉：抹茶千层 ¥38".encode()
    assert len(message) > len(message.decode())
    sealed = doc.encrypt(message)
    assert int.from_bytes(raw_plaintext(DOC_KEY, sealed)[16:20], "big") == len(message)
    assert doc.decrypt(sealed) == message


def test_non_canonical_key_decodes_like_its_canonical_twin() -> None:
    # 'C' (0b000010) has stray low bits in the 43rd position; 'A' is the canonical spelling of the same key.
    canonical = DOC_KEY[:-1] + "A"
    message = b"<xml>same key</xml>"
    assert CallbackCrypto(DOC_TOKEN, canonical, DOC_CORP).decrypt(
        CallbackCrypto(DOC_TOKEN, DOC_KEY, DOC_CORP).encrypt(message)
    ) == message


def test_empty_receive_id_for_an_individuals_third_party_app() -> None:
    ours = CallbackCrypto(DOC_TOKEN, DOC_KEY, "")
    assert ours.decrypt(ours.encrypt(b"<xml/>")) == b"<xml/>"
    with pytest.raises(ReceiveIdMismatch):
        CallbackCrypto(DOC_TOKEN, DOC_KEY, DOC_CORP).decrypt(ours.encrypt(b"<xml/>"))


def test_random_prefix_is_fresh_each_time_and_must_be_16_bytes(doc: CallbackCrypto) -> None:
    first, second = doc.encrypt(b"<xml/>"), doc.encrypt(b"<xml/>")
    assert first != second and doc.decrypt(first) == doc.decrypt(second) == b"<xml/>"
    with pytest.raises(ValueError):
        doc.encrypt(b"<xml/>", random_prefix=b"too short")


def test_signed_reply_is_the_documented_envelope_and_verifies(doc: CallbackCrypto) -> None:
    reply = doc.signed_reply("收到，谢谢！".encode(), "1409659813", "1372623149")
    root = ET.fromstring(reply)
    assert [child.tag for child in root] == ["Encrypt", "MsgSignature", "TimeStamp", "Nonce"]
    fields = envelope_fields(reply)
    assert (fields["TimeStamp"], fields["Nonce"]) == ("1409659813", "1372623149")
    assert fields["MsgSignature"] == sha1_signature(DOC_TOKEN, "1409659813", "1372623149", fields["Encrypt"])
    assert doc.unwrap(fields["MsgSignature"], "1409659813", "1372623149", fields["Encrypt"]) == "收到，谢谢！".encode()


@pytest.mark.parametrize(("timestamp", "nonce"), [("1409659813", "a]]>b"), ("14<09", "1"), ("", "1"), ("1", ""), ("١٢", "1")])
def test_signed_reply_refuses_what_it_would_put_into_xml_unescaped(
    timestamp: str, nonce: str, doc: CallbackCrypto
) -> None:
    with pytest.raises(ValueError):
        doc.signed_reply(b"<xml/>", timestamp, nonce)


# --- rejections ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signature",
    [
        "477715d11cdb4164915debcba66cb864d751f3e7",  # one digit off
        "477715D11CDB4164915DEBCBA66CB864D751F3E6",  # the samples compare lower-case hex exactly
        "",
        "签名",
    ],
)
def test_wrong_signature(signature: str, doc: CallbackCrypto) -> None:
    with pytest.raises(BadSignature) as caught:
        doc.unwrap(signature, "1409659813", "1372623149", DOC_ENCRYPT)
    assert caught.value.code == -40001


def test_signature_is_checked_before_anything_is_decrypted(doc: CallbackCrypto) -> None:
    with pytest.raises(BadSignature):
        doc.unwrap("477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149", "not base64!")
    with pytest.raises(BadSignature):  # a timestamp or nonce other than the signed ones
        doc.unwrap("477715d11cdb4164915debcba66cb864d751f3e6", "1409659814", "1372623149", DOC_ENCRYPT)
    with pytest.raises(BadSignature):  # a lone surrogate from a mangled query is a mismatch, not a crash
        doc.verify("477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "\udcff", DOC_ENCRYPT)


@pytest.mark.parametrize(
    "encrypted",
    [
        "not base64!",
        "QUJ",  # not whole quads
        "QQ=",  # padding cut short
        "QUI=QUJD",  # data after the padding
        "=QUJD",
        "QUJD QUJD",
        DOC_ENCRYPT.replace("+", " "),  # a '+' that was form-decoded into a space on the way
        DOC_ENCRYPT + "\n",
        "密文",
    ],
)
def test_bad_base64(encrypted: str, doc: CallbackCrypto) -> None:
    with pytest.raises(BadBase64) as caught:
        doc.decrypt(encrypted)
    assert caught.value.code == -40010


@pytest.mark.parametrize("size", [0, 15, 17, 33])
def test_ciphertext_that_is_not_whole_aes_blocks(size: int, doc: CallbackCrypto) -> None:
    with pytest.raises(DecryptFailed) as caught:
        doc.decrypt(base64.b64encode(b"\x00" * size).decode())
    assert caught.value.code == -40007


@pytest.mark.parametrize("last_byte", [0, 33])
def test_tampered_ciphertext_gives_bad_padding(last_byte: int, doc: CallbackCrypto) -> None:
    sealed = bytearray(base64.b64decode(doc.encrypt(b"<xml>hello</xml>", random_prefix=bytes(16))))
    pad = raw_plaintext(DOC_KEY, base64.b64encode(sealed).decode())[-1]
    # In CBC, flipping bits in the second-to-last block flips the same bits of the last plaintext block.
    sealed[-17] ^= pad ^ last_byte
    tampered = base64.b64encode(sealed).decode()
    assert raw_plaintext(DOC_KEY, tampered)[-1] == last_byte
    with pytest.raises(BadPlaintext) as caught:
        doc.decrypt(tampered)
    assert caught.value.code == -40008


@pytest.mark.parametrize(
    "plaintext",
    [
        pad32(bytes(16) + (1000).to_bytes(4, "big") + b"short" + DOC_CORP.encode()),
        pad32(bytes(16) + (0xFFFFFFFF).to_bytes(4, "big") + DOC_CORP.encode()),
        pad32(bytes(16)),  # shorter than random + length
        bytes(29) + bytes([1, 2, 3]),  # pad byte 3, but the bytes before it are not 3
        bytes(32) + bytes([16]) * 16,  # valid 16-byte padding, but 48 bytes are not whole 32-byte blocks
    ],
    ids=["length_past_end", "length_all_ones", "no_header", "inconsistent_pad", "48_bytes"],
)
def test_bad_plaintext_layout(plaintext: bytes, doc: CallbackCrypto) -> None:
    with pytest.raises(BadPlaintext) as caught:
        doc.decrypt(raw_ciphertext(DOC_KEY, plaintext))
    assert caught.value.code == -40008


@pytest.mark.parametrize(
    "key",
    [
        "",
        DOC_KEY[:-1],  # 42
        DOC_KEY + "A",  # 44
        DOC_KEY + "=",  # the padded Base64 is not what the admin console shows
        DOC_KEY[:-1] + "+",
        DOC_KEY[:-1] + "/",
        DOC_KEY[:-1] + "０",  # fullwidth digit
        DOC_KEY[:-1] + "\n",
    ],
)
def test_bad_aes_key(key: str) -> None:
    with pytest.raises(BadAesKey) as caught:
        CallbackCrypto(DOC_TOKEN, key, DOC_CORP)
    assert caught.value.code == -40004


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BadSignature, -40001),
        (BadAesKey, -40004),
        (ReceiveIdMismatch, -40005),
        (DecryptFailed, -40007),
        (BadPlaintext, -40008),
        (BadBase64, -40010),
    ],
)
def test_each_rejection_carries_the_official_sample_code(error: type[CallbackError], code: int) -> None:
    raised = error("why")  # type: ignore[call-arg]
    assert isinstance(raised, CallbackError)
    assert (raised.code, raised.reason, str(raised)) == (code, "why", "why")
    assert CallbackError(-40002, "xml").code == -40002
