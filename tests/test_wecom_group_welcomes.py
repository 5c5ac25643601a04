"""Group welcome templates and channels' group QR codes, end to end against the fake
cloud: the file's templates and join ways reach WeCom when the server starts (and only
what changed, when it starts again); the console adds, edits and deletes templates, each
reaching WeCom; WeCom's per-corp limit and its refusals show on the page; a customer who
scans a channel's QR code joins the group and gets the channel's tags."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from bot.settings.model import ConfigError, load_settings
from bot.shared.keys import DELIVERY
from bot.web.app import build_app
from storage.engine import SessionFactory
from storage.group_welcomes import WelcomeContent, save_welcome
from storage.models import Member, MemberIdentity, MemberTag, OutboxEntry, Tag, utcnow
from storage.outreach_models import GroupWelcome, JoinWay
from tests.conftest import RunningServer, eventually, start_server, write_config
from tests.console_harness import CONSOLE_CONFIG, PASSWORD, ConsoleClient
from tests.fakes.wecom_cloud import FakeWeComCloud
from tests.wecom_harness import Corp, wecom_config

ALICE = "wmAJ2GCAAAXtWyujaWJHDDGi0mAAAA"
GROUP = "wrJinganBakers01"
WELCOMES = """
[[platforms.wecom.group_welcomes]]
id = "jingan"
text = "欢迎 %NICKNAME% 来到静安店烘焙交流群！"
link_title = "本周新品"
link_url = "https://brand.example/new"

[platforms.wecom.channels.group-jingan]
tags = ["静安群"]
store = "jingan"
group_chats = ["wrJinganBakers01"]
group_room_name = "静安烘焙交流群"
"""


def config(cloud: FakeWeComCloud, welcomes: str = WELCOMES) -> str:
    return wecom_config(cloud.base_url) + welcomes + CONSOLE_CONFIG


async def settled(sessions: SessionFactory) -> bool:
    async with sessions() as session:
        return all(r.status in ("sent", "failed") for r in (await session.execute(select(OutboxEntry))).scalars())


@pytest.fixture
async def served(cloud: FakeWeComCloud, db_url: str, tmp_path: Path, http: aiohttp.ClientSession,
                 sessions: SessionFactory) -> AsyncIterator[RunningServer]:
    cloud.add_group(GROUP, "静安店烘焙交流群", "zhangsan", [])
    settings = load_settings(write_config(tmp_path, db_url, config(cloud)))
    running = await start_server(build_app(settings), http)
    await eventually(lambda: settled(sessions))
    yield running
    await running.stop()


async def signed_in(server: RunningServer) -> ConsoleClient:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    client = ConsoleClient(server.base, http)
    page = await client.get("/admin/login")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert token
    async with http.post(server.base + "/admin/login", data={"login": "ops", "password": PASSWORD,
                                                              "csrf": token.group(1), "next": ""}):
        pass
    return client


async def test_the_files_templates_and_join_ways_reach_wecom_on_start(
    served: RunningServer, cloud: FakeWeComCloud, sessions: SessionFactory, db_url: str, tmp_path: Path,
    http: aiohttp.ClientSession,
) -> None:
    ((template_id, template),) = cloud.welcome_templates.items()
    assert template["body"] == {"text": {"content": "欢迎 %NICKNAME% 来到静安店烘焙交流群！"},
                                "link": {"title": "本周新品", "url": "https://brand.example/new"}}
    ((config_id, way),) = cloud.join_ways.items()
    assert (way["scene"], way["chat_id_list"], way["state"], way["room_base_name"]) == (
        2, [GROUP], "group-jingan", "静安烘焙交流群")
    async with sessions() as session:
        (row,) = (await session.execute(select(GroupWelcome))).scalars().all()
        joined = await session.get(JoinWay, "group-jingan")
    assert (row.key, row.source, row.sync_status, row.template_id) == ("jingan", "config", "synced", template_id)
    assert (joined.config_id, joined.qr_code, joined.sync_status) == (config_id, way["qr_code"], "synced")

    # Started again with the same file: nothing new goes to WeCom. With the template
    # changed and the channel's groups gone: an edit and a deletion.
    calls = len(cloud.calls)
    await served.stop()
    again = await start_server(build_app(load_settings(write_config(tmp_path, db_url, config(cloud)))), http)
    await eventually(lambda: settled(sessions))
    assert len(cloud.calls) == calls
    await again.stop()
    changed = WELCOMES.replace("来到静安店烘焙交流群", "加入我们").split("[platforms.wecom.channels")[0]
    third = await start_server(build_app(load_settings(write_config(tmp_path, db_url, config(cloud, changed)))), http)
    await eventually(lambda: settled(sessions))
    assert cloud.welcome_templates[template_id]["body"]["text"]["content"] == "欢迎 %NICKNAME% 加入我们！"
    assert cloud.join_ways == {}
    async with sessions() as session:
        assert await session.get(JoinWay, "group-jingan") is None
    await third.stop()


async def test_a_customer_who_scans_the_channels_qr_code_gets_its_tags(
    served: RunningServer, cloud: FakeWeComCloud, sessions: SessionFactory
) -> None:
    cloud.add_contact("zhangsan", ALICE, "王芳")
    async with sessions() as session, session.begin():
        member = Member(name="王芳")
        session.add(member)
        await session.flush()
        assert member.id is not None
        session.add(MemberIdentity(member_id=member.id, platform="wecom", external_id=ALICE))
    (config_id,) = cloud.join_ways
    chat_id = cloud.scan_join_way(config_id, ALICE)
    corp = Corp(cloud, served, sessions)
    event = (f"<xml><ToUserName><![CDATA[x]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
             f"<CreateTime>1767225600</CreateTime><MsgType><![CDATA[event]]></MsgType>"
             f"<Event><![CDATA[change_external_chat]]></Event><ChatId><![CDATA[{chat_id}]]></ChatId>"
             f"<ChangeType><![CDATA[update]]></ChangeType><UpdateDetail><![CDATA[add_member]]></UpdateDetail>"
             f"<JoinScene>3</JoinScene><MemChangeCnt>1</MemChangeCnt><MemChangeList><Item><![CDATA[{ALICE}]]></Item>"
             f"</MemChangeList></xml>")
    assert (await corp.callback(event))[0] == 200

    async def tagged() -> bool:
        async with sessions() as session:
            names = (await session.execute(select(Tag.name, MemberTag.source_ref).join(
                MemberTag, MemberTag.tag_id == Tag.id).where(MemberTag.member_id == member.id))).all()
        return names == [("静安群", "channel:group-jingan")]
    await eventually(tagged)
    assert cloud.calls_to("/cgi-bin/externalcontact/groupchat/get")


async def test_the_console_manages_templates_and_shows_wecoms_answer(
    served: RunningServer, cloud: FakeWeComCloud, sessions: SessionFactory
) -> None:
    client = await signed_in(served)
    try:
        page = await client.get("/admin/group-welcomes")
        assert "jingan" in page and "配置文件" in page and "打开二维码" in page
        # bad input: a clear answer, nothing saved
        bad = await client.post("/admin/group-welcomes", {"key": "x y", "text": "", "image_url": "ftp://x",
                                                          "link_url": "https://a"}, expect=400)
        assert "key: required" in bad and "must be an http:// or https:// address" in bad and "only one of an image" in bad
        await client.post("/admin/group-welcomes", {"key": "xuhui", "text": "欢迎来到徐汇店群", "notify": "on"})
        served.app[DELIVERY].wake()
        await eventually(lambda: settled(sessions))
        texts = sorted(t["body"]["text"]["content"] for t in cloud.welcome_templates.values())
        assert texts == ["欢迎 %NICKNAME% 来到静安店烘焙交流群！", "欢迎来到徐汇店群"]
        await client.post("/admin/group-welcomes/xuhui", {"text": "欢迎 %NICKNAME% 来到徐汇店群"})
        await eventually(lambda: settled(sessions))
        assert "欢迎 %NICKNAME% 来到徐汇店群" in [t["body"]["text"]["content"] for t in cloud.welcome_templates.values()]
        assert "来自配置文件" in await client.post("/admin/group-welcomes/jingan", {"text": "x"}, expect=400)
        await client.get("/admin/group-welcomes/jingan", expect=404)  # the file's: edited in the file
        await client.post("/admin/group-welcomes/xuhui/delete", {})
        await eventually(lambda: settled(sessions))
        assert len(cloud.welcome_templates) == 1
        async with sessions() as session:
            assert [w.key for w in (await session.execute(select(GroupWelcome))).scalars()] == ["jingan"]

        # WeCom's own limit, counting templates an admin made there: refused, and said so.
        for n in range(99):
            cloud.seed_welcome_template(f"admin {n}")
        await client.post("/admin/group-welcomes", {"key": "one-more", "text": "再来一条"})
        await eventually(lambda: settled(sessions))
        page = await client.get("/admin/group-welcomes")
        assert "同步失败" in page and "errcode 40058" in page
        # ...and ours, before asking WeCom.
        async with sessions() as session, session.begin():
            for n in range(98):
                await save_welcome(session, f"bulk-{n}", WelcomeContent(text="x"), "console", utcnow())
        assert "最多保存 100 条" in await client.post("/admin/group-welcomes", {"key": "too-many", "text": "x"}, expect=409)
    finally:
        await client.http.close()


def test_welcome_templates_in_the_file_are_checked(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite:///x.db", wecom_config("https://qyapi.weixin.qq.com") + """
[[platforms.wecom.group_welcomes]]
id = "a"
text = ""

[[platforms.wecom.group_welcomes]]
id = "a"
text = "hi"
image_url = "https://x/1.jpg"
link_url = "https://x"
link_title = "t"

[platforms.wecom.channels.a-channel-code-longer-than-thirty-chars]
group_chats = ["wr1"]
""")
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    text = str(error.value)
    assert "not everything may be empty" in text and "only one of an image and a link" in text
    assert "at most 30 characters" in text
    twice = write_config(tmp_path, "sqlite:///x.db", wecom_config("https://qyapi.weixin.qq.com") + """
[[platforms.wecom.group_welcomes]]
id = "a"
text = "hi"

[[platforms.wecom.group_welcomes]]
id = "a"
text = "again"
""")
    with pytest.raises(ConfigError) as error:
        load_settings(twice)
    assert "ids used twice: a" in str(error.value)


async def test_without_wecom_the_page_is_there_and_staff_may_not_use_it(log_in) -> None:  # noqa: ANN001
    ops = await log_in("ops")
    page = await ops.get("/admin/group-welcomes")
    assert "还没有欢迎语素材" in page and "还没有渠道配置入群二维码" in page
    staff = await log_in("liuyang")
    await staff.get("/admin/group-welcomes", expect=403)
    await staff.post("/admin/group-welcomes", {"key": "x", "text": "hi"}, expect=403)
