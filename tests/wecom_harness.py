"""A WeCom corp for tests: the fake cloud, a siyu server pointed at it, and callbacks
signed and encrypted by an independent implementation (wechatpy), as WeCom would."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from sqlalchemy import func, select
from wechatpy.crypto import WeChatCrypto as OfficialAccountCrypto
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.platforms.wecom.xml import parse_fields
from bot.settings.model import load_settings
from bot.web.app import build_app
from storage.engine import SessionFactory
from storage.models import InboxEntry
from tests.conftest import RunningServer, start_server, write_config
from tests.fakes.wecom_cloud import FakeWeComCloud

CORP = "ww5f0c0ffee0000001"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
SECRET = "app-secret-Zq8x1V4mN7pK2rT9wY3bC6dF0gH5jL"
AGENT = 1000002
OA_APPID = "wx2c2769f8efd9abc2"
OA_TOKEN = "spamtest"
OA_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OA_OLD_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
OA_SECRET = "oa-secret-Hh2Jj4Kk6Ll8Mm0Nn2Pp4Qq6"
WELCOME = "/cgi-bin/externalcontact/send_welcome_msg"
SEND = "/cgi-bin/message/send"
KF_SEND = "/cgi-bin/kf/send_msg"
CUSTOM = "/cgi-bin/message/custom/send"


def wecom_config(api_base: str, tag_sync_group: str | None = None) -> str:
    sync = f'tag_sync_group = "{tag_sync_group}"\n' if tag_sync_group else ""
    return f"""
[platforms.wecom]
corp_id = "{CORP}"
agent_id = {AGENT}
token = "{TOKEN}"
encoding_aes_key = "{AES_KEY}"
secret = "{SECRET}"
api_base = "{api_base}"
retry_max_seconds = 0.01
{sync}
[platforms.wecom.channels.poster-jingan]
tags = ["门店海报"]
store = "jingan"

[platforms.oa]
app_id = "{OA_APPID}"
token = "{OA_TOKEN}"
secret = "{OA_SECRET}"
encoding_aes_key = "{OA_AES_KEY}"
previous_encoding_aes_key = "{OA_OLD_AES_KEY}"
api_base = "{api_base}"
retry_max_seconds = 0.01
"""


@dataclass
class Corp:
    cloud: FakeWeComCloud
    server: RunningServer
    sessions: SessionFactory

    @staticmethod
    def stamp() -> str:
        """A callback timestamp, as WeCom sends: the clock's second now. Never a counter,
        which drifts ahead of the clock by one second per callback sent faster than one
        a second and so, in a long session, out of a replay window."""
        return str(int(time.time()))

    @staticmethod
    def nonce() -> str:
        """A fresh nonce per callback, as the platforms send: two callbacks in one second
        must not share a signature triple, which the official account's replay guard refuses."""
        return str(secrets.randbelow(10**10))

    def envelope(
        self, plaintext: str, *, corp: str = CORP, key: str = AES_KEY, timestamp: str | None = None
    ) -> tuple[dict[str, str], str]:
        """The query and body WeCom would POST for `plaintext`."""
        timestamp, nonce = timestamp or self.stamp(), self.nonce()
        reply = parse_fields(WeChatCrypto(TOKEN, key, corp).encrypt_message(plaintext, nonce, timestamp))
        query = {"msg_signature": reply["MsgSignature"], "timestamp": timestamp, "nonce": nonce}
        body = f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><Encrypt><![CDATA[{reply['Encrypt']}]]></Encrypt><AgentID><![CDATA[{AGENT}]]></AgentID></xml>"
        return query, body

    async def post(self, query: dict[str, str], body: str | bytes, path: str = "/wecom/callback") -> tuple[int, str]:
        async with self.server.client.post(f"{self.server.base}{path}?{urlencode(query)}", data=body) as response:
            return response.status, await response.text()

    async def callback(self, plaintext: str) -> tuple[int, str]:
        return await self.post(*self.envelope(plaintext))

    async def oa_post(self, plaintext: str, *, key: str | None = OA_AES_KEY) -> tuple[int, str]:
        """A follower's message to the official account, in safe mode (or plaintext when key is None)."""
        timestamp, nonce = self.stamp(), self.nonce()
        from bot.platforms.wecom.crypto import sha1_signature

        query = {"signature": sha1_signature(OA_TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
        body = plaintext
        if key is not None:
            reply = parse_fields(OfficialAccountCrypto(OA_TOKEN, key, OA_APPID).encrypt_message(plaintext, nonce, timestamp))
            query |= {"encrypt_type": "aes", "msg_signature": reply["MsgSignature"]}
            body = f"<xml><ToUserName><![CDATA[gh_brand]]></ToUserName><Encrypt><![CDATA[{reply['Encrypt']}]]></Encrypt></xml>"
        return await self.post(query, body, "/oa/callback")

    async def inbox_rows(self) -> int:
        async with self.sessions() as session:
            return int((await session.execute(select(func.count()).select_from(InboxEntry))).scalar_one())


def contact_event(change: str, external: str, staff: str = "zhangsan", created: int | None = None, **extra: str) -> str:
    fields = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in extra.items())
    return (
        f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{created or int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[{change}]]></ChangeType>"
        f"<UserID><![CDATA[{staff}]]></UserID><ExternalUserID><![CDATA[{external}]]></ExternalUserID>{fields}</xml>"
    )


@pytest.fixture
async def cloud() -> AsyncIterator[FakeWeComCloud]:
    fake = FakeWeComCloud(CORP, {SECRET: "siyu"})
    fake.add_official_account(OA_APPID, OA_SECRET)
    fake.add_staff("zhangsan", "lisi")
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def corp(
    cloud: FakeWeComCloud, db_url: str, tmp_path: Path, http: aiohttp.ClientSession, sessions: SessionFactory
) -> AsyncIterator[Corp]:
    settings = load_settings(write_config(tmp_path, db_url, wecom_config(cloud.base_url)))
    running = await start_server(build_app(settings), http)
    yield Corp(cloud, running, sessions)
    await running.stop()
