"""The official account's safe mode cannot be downgraded, and a seen request cannot be
replayed (issue 14 item 3): a forged follower once opted a member out with a plaintext
body posted under one captured signature triple."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from sqlalchemy import func, select
from wechatpy.crypto import WeChatCrypto as OfficialAccountCrypto

from bot.platforms.wecom.crypto import sha1_signature
from bot.platforms.wecom.xml import parse_fields
from bot.settings.model import load_settings
from bot.web.app import build_app
from storage.engine import SessionFactory
from storage.models import InboxEntry, SeenCallback
from tests.conftest import RunningServer, start_server, write_config
from tests.fakes.wecom_cloud import FakeWeComCloud
from tests.wecom_harness import OA_AES_KEY, OA_APPID, OA_TOKEN, wecom_config

OPT_OUT = ("<xml><ToUserName><![CDATA[gh_brand]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
           "<CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
           "<Content><![CDATA[退订]]></Content><MsgId>{msgid}</MsgId></xml>")


def message(openid: str, msgid: int) -> str:
    return OPT_OUT.format(openid=openid, now=int(time.time()), msgid=msgid)


def signed(timestamp: str, nonce: str) -> dict[str, str]:
    return {"signature": sha1_signature(OA_TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}


def encrypted(plaintext: str, timestamp: str, nonce: str) -> tuple[dict[str, str], str]:
    reply = parse_fields(OfficialAccountCrypto(OA_TOKEN, OA_AES_KEY, OA_APPID).encrypt_message(plaintext, nonce, timestamp))
    query = signed(timestamp, nonce) | {"encrypt_type": "aes", "msg_signature": reply["MsgSignature"]}
    return query, f"<xml><ToUserName><![CDATA[gh_brand]]></ToUserName><Encrypt><![CDATA[{reply['Encrypt']}]]></Encrypt></xml>"


async def post(server: RunningServer, query: dict[str, str], body: str) -> int:
    async with server.client.post(f"{server.base}/oa/callback?{urlencode(query)}", data=body) as response:
        return response.status


async def inbox(sessions: SessionFactory) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(InboxEntry))).scalar_one())


async def serve(
    cloud: FakeWeComCloud, tmp_path: Path, db_url: str, http: aiohttp.ClientSession, extra: str = ""
) -> RunningServer:
    config = wecom_config(cloud.base_url) + extra  # [platforms.oa] comes last: `extra` adds to it
    return await start_server(build_app(load_settings(write_config(tmp_path, db_url, config))), http)


@pytest.fixture
async def safe(
    cloud: FakeWeComCloud, tmp_path: Path, db_url: str, http: aiohttp.ClientSession
) -> AsyncIterator[RunningServer]:
    server = await serve(cloud, tmp_path, db_url, http)
    yield server
    await server.stop()


async def test_without_encrypt_type_a_plaintext_body_is_refused(safe: RunningServer, sessions: SessionFactory) -> None:
    stamp = str(int(time.time()))
    # The attack: a captured triple, encrypt_type dropped, a forged follower's 退订 in plaintext.
    assert await post(safe, signed(stamp, "111"), message("oForgedOpenid001", 1)) == 403
    assert await inbox(sessions) == 0
    query, body = encrypted(message("oRealFollower001", 2), stamp, "222")
    assert await post(safe, query, body) == 200
    assert await inbox(sessions) == 1


async def test_the_same_triple_twice_is_refused(safe: RunningServer, sessions: SessionFactory) -> None:
    stamp = str(int(time.time()))
    query, body = encrypted(message("oRealFollower001", 3), stamp, "333")
    assert await post(safe, query, body) == 200
    assert await post(safe, query, body) == 403
    other, other_body = encrypted(message("oRealFollower001", 4), stamp, "334")  # another nonce: fine
    assert await post(safe, other, other_body) == 200
    assert await inbox(sessions) == 2


async def test_a_timestamp_outside_the_window_is_refused(safe: RunningServer, sessions: SessionFactory) -> None:
    # Well past the 300 s window either way: a slow first request must not bring +301 back inside it.
    for stamp in (str(int(time.time()) - 600), str(int(time.time()) + 600), "abc", "9" * 40):
        query, body = encrypted(message("oRealFollower001", 5), stamp, "555")
        assert await post(safe, query, body) in (400, 403), stamp
    assert await inbox(sessions) == 0


async def test_old_triples_are_pruned(safe: RunningServer, sessions: SessionFactory) -> None:
    from datetime import timedelta

    from storage.models import utcnow

    async with sessions() as session, session.begin():
        session.add(SeenCallback(platform="oa", digest="old", seen_at=utcnow() - timedelta(hours=1)))
    query, body = encrypted(message("oRealFollower001", 6), str(int(time.time())), "666")
    assert await post(safe, query, body) == 200
    async with sessions() as session:
        digests = (await session.execute(select(SeenCallback.digest))).scalars().all()
    assert len(digests) == 1 and digests[0] != "old"


async def test_plaintext_is_taken_only_when_the_setting_allows_it(
    cloud: FakeWeComCloud, tmp_path: Path, db_url: str, http: aiohttp.ClientSession, sessions: SessionFactory
) -> None:
    server = await serve(cloud, tmp_path, db_url, http, "accept_plaintext = true\n")
    try:
        stamp = str(int(time.time()))
        assert await post(server, signed(stamp, "777"), message("oPlainFollower01", 7)) == 200
        assert await post(server, signed(stamp, "777"), message("oForgedOpenid001", 8)) == 403  # still no replay
        assert await inbox(sessions) == 1
    finally:
        await server.stop()
