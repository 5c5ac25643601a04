"""A brand with two stores on WeCom, for the chat sidebar's tests: the fake cloud, a
siyu server on a port chosen beforehand (the sidebar's OAuth2 redirect names it), and
a member of the first store with tags, layers, care days, a care task with suggested
words and a conversation."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web

from bot.settings.model import load_settings
from bot.web.app import build_app
from storage.engine import SessionFactory
from storage.models import (
    CustomerGroup,
    GroupMembership,
    Interaction,
    LayerAssignment,
    LayerMove,
    Member,
    MemberIdentity,
    MemberTag,
    SixMomentsTouch,
    Staff,
    StaffTask,
    Store,
    Tag,
)
from tests.conftest import write_config
from tests.fakes.wecom_cloud import FakeWeComCloud
from tests.wecom_harness import wecom_config

WANG = "wmWangFang0001"  # her external_userid
ZHAO = "wmZhaoLei00002"  # a member of the other store
CHAT = "wrGroupJingan01"
WORDS = "王芳，生日快乐！给你留了一块你最爱的栗子蛋糕，下午来店里坐坐？"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Brand:
    wang: int  # member ids
    zhao: int
    task: int  # the care task about her, zhangsan's


async def seed_sidebar_brand(sessions: SessionFactory, now: datetime) -> Brand:
    today = now.astimezone(ZoneInfo("Asia/Shanghai")).date()  # the brand's day, as the card counts
    async with sessions() as session, session.begin():
        jingan, xuhui = Store(code="jingan", name="静安店"), Store(code="xuhui", name="徐汇店")
        session.add_all([jingan, xuhui])
        await session.flush()
        zhang = Staff(userid="zhangsan", name="张珊", store_id=jingan.id)
        li = Staff(userid="lisi", name="李四", store_id=xuhui.id)
        session.add_all([zhang, li])
        await session.flush()
        birthday = today + timedelta(days=3)
        wang = Member(name="王芳", phone="13812345678", store_id=jingan.id, owner_staff_id=zhang.id,
                      birth_month=birthday.month, birth_day=birthday.day, member_since=date(2021, 5, 20))
        zhao = Member(name="赵磊", store_id=xuhui.id, owner_staff_id=li.id)
        session.add_all([wang, zhao])
        await session.flush()
        assert wang.id is not None and zhao.id is not None
        session.add_all([MemberIdentity(member_id=wang.id, platform="wecom", external_id=WANG),
                         MemberIdentity(member_id=zhao.id, platform="wecom", external_id=ZHAO)])
        bread = Tag(name="面包控", group="口味偏好")
        session.add(bread)
        await session.flush()
        session.add(MemberTag(member_id=wang.id, tag_id=bread.id, source="rule", source_ref="interest-bread",
                              first_seen=now - timedelta(days=30), last_seen=now, hit_count=4))
        session.add_all([
            LayerAssignment(member_id=wang.id, scheme="value", layer="super"),
            LayerMove(member_id=wang.id, scheme="value", from_layer="core", to_layer="super", moved_at=now - timedelta(days=2)),
            Interaction(member_id=wang.id, kind="message_in", platform="wecom", at=now - timedelta(hours=3),
                        text="周末的栗子蛋糕还有吗？我电话13812345678", ref="seed:1"),
            Interaction(member_id=wang.id, kind="staff_out", platform="wecom", at=now - timedelta(hours=2),
                        text="有的，给你留一块", ref="seed:2"),
        ])
        task = StaffTask(dedupe_key="care:birthday:wang", staff_id=zhang.id, member_id=wang.id, kind="care",
                         title="王芳 生日：送一块蛋糕", due_date=birthday,
                         body=f"【用心关怀】请为王芳送上一块蛋糕。\n\n参考话术（请换成你自己的话）：\n{WORDS}")
        session.add(task)
        session.add_all([
            SixMomentsTouch(member_id=wang.id, year=today.year, slot=1, kind="birthday", due_date=birthday, label="生日"),
            SixMomentsTouch(member_id=wang.id, year=today.year, slot=2, kind="preview", due_date=birthday + timedelta(days=60),
                            label="新季预览"),
        ])
        group = CustomerGroup(platform="wecom", chat_id=CHAT, name="静安店烘焙交流群", owner="zhangsan")
        session.add(group)
        await session.flush()
        assert group.id is not None and task.id is not None
        joined = now - timedelta(days=1)
        session.add_all([GroupMembership(group_id=group.id, user_id=WANG, member_id=wang.id, joined_at=joined),
                         GroupMembership(group_id=group.id, user_id=ZHAO, member_id=zhao.id, joined_at=joined),
                         GroupMembership(group_id=group.id, user_id="zhangsan", joined_at=joined)])
    return Brand(wang.id, zhao.id, task.id)


@dataclass
class SidebarServer:
    cloud: FakeWeComCloud
    base: str
    app: web.Application
    brand: Brand
    sessions: SessionFactory

    @property
    def url(self) -> str:
        return self.base + "/wecom/sidebar"

    async def signed_in(self, userid: str | None) -> aiohttp.ClientSession:
        """A client WeCom has signed `userid` into the sidebar (it follows the OAuth2 round trip)."""
        self.cloud.client_user = userid
        client = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with client.get(self.url) as answer:
            assert answer.status == 200, await answer.text()
        return client


@pytest.fixture
async def sidebar(cloud: FakeWeComCloud, db_url: str, tmp_path: Path, sessions: SessionFactory) -> AsyncIterator[SidebarServer]:
    port = free_port()
    extra = wecom_config(cloud.base_url, tag_sync_group="siyu") + f"""
[platforms.wecom.sidebar]
oauth_base = "{cloud.base_url}"
public_url = "http://127.0.0.1:{port}"

[server]
port = {port}
"""
    settings = load_settings(write_config(tmp_path, db_url, extra))
    brand = await seed_sidebar_brand(sessions, datetime.now(timezone.utc))
    app = build_app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield SidebarServer(cloud, f"http://127.0.0.1:{port}", app, brand, sessions)
    await runner.cleanup()
