"""A calendar mass send's attachments, edited in the console's entry form: a link card,
images and a mini-program card are checked by WeCom's limits as `siyu calendar load`
checks them, refused by field, previewed, stored, and carried by the mass send WeCom
receives (the fake cloud)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from PIL import Image

from bot.console.calendar_form import entry_item, form_values
from bot.console.config_words import spoken
from bot.console.i18n import translator
from bot.settings.calendar_context import calendar_context
from bot.settings.model import load_settings
from bot.shared.keys import SETTINGS
from bot.web.app import build_app
from scheduler.calendar_run import CalendarOptions, calendar_entries, load_calendar, run_calendar
from scheduler.mass_attachments import MassAttachments, MassLink, MiniProgram
from storage.engine import SessionFactory
from storage.models import Member, MemberIdentity, Staff, utcnow
from tests.conftest import RunningServer, eventually, start_server, write_config
from tests.console_harness import CONSOLE_CONFIG, PASSWORD, ConsoleClient
from tests.fakes.wecom_cloud import FakeWeComCloud
from tests.test_console_calendar import toml_of
from tests.wecom_harness import wecom_config

SHANGHAI = ZoneInfo("Asia/Shanghai")
ALICE = "wmAttachAlice00001"
# A one-off a few minutes ago: the calendar fires it now and delivery sends it at once.
AT = (utcnow() - timedelta(minutes=5)).replace(second=0, microsecond=0)
LINK = {"mass_link_title": "冬季新品", "mass_link_url": "https://hemai.example/winter",
        "mass_link_desc": "三款新面包，本周到店", "mass_link_picurl": "https://hemai.example/winter.jpg"}
MINI = {"mini_appid": "wx1234567890abcdef", "mini_page": "pages/menu/index.html", "mini_title": "冬季菜单",
        "mini_cover": "menu-cover.png"}


@dataclass
class Served:
    server: RunningServer
    ops: ConsoleClient
    media: Path


@pytest.fixture
async def served(cloud: FakeWeComCloud, db_url: str, tmp_path: Path, sessions: SessionFactory) -> AsyncIterator[Served]:
    media = tmp_path / "media"
    (media / "winter").mkdir(parents=True)
    for name in ("winter/1.png", "menu-cover.png"):
        Image.new("RGB", (40, 30), "orange").save(media / name, "PNG")
    (media / "notes.txt").write_text("not an image", encoding="utf-8")
    config = wecom_config(cloud.base_url) + CONSOLE_CONFIG + f'\n[calendar]\nmedia_dir = "{media}"\n'
    settings = load_settings(write_config(tmp_path, db_url, config))
    cloud.add_contact("zhangsan", ALICE, "王芳")
    async with sessions() as session, session.begin():
        staff = Staff(userid="zhangsan", name="张三")
        session.add(staff)
        await session.flush()
        member = Member(name="王芳", owner_staff_id=staff.id)
        session.add(member)
        await session.flush()
        session.add(MemberIdentity(member_id=member.id, platform="wecom", external_id=ALICE))  # type: ignore[arg-type]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        running = await start_server(build_app(settings), http)
        try:
            ops = ConsoleClient(running.base, http)
            token = re.search(r'name="csrf-token" content="([^"]+)"', await ops.get("/admin/login"))
            assert token
            async with http.post(running.base + "/admin/login", data={
                    "login": "ops", "password": PASSWORD, "csrf": token.group(1), "next": ""}) as response:
                assert response.status == 200 and response.url.path != "/admin/login"
            yield Served(running, ops, media)
        finally:
            await running.stop()


def typed(**fields: Any) -> dict[str, Any]:
    """A one-off WeCom mass send to everyone on Christmas Eve."""
    return {"id": "xmas-mass", "title": "圣诞群发", "when": "at", "at": f"{AT.astimezone(SHANGHAI):%Y-%m-%dT%H:%M}",
            "channel": "wecom_mass",
            "template": "calendar/new_season.txt.j2", "scheme": "value", "everyone": "on"} | fields


async def test_an_entry_with_a_link_image_and_mini_program_is_stored_and_the_mass_send_carries_them(
    served: Served, cloud: FakeWeComCloud, sessions: SessionFactory
) -> None:
    fields = typed(**LINK, **MINI, mass_images="winter/1.png")
    answer = await served.ops.post_json("/admin/calendar/validate", fields)
    assert answer["ok"] is True, answer["problems"]
    assert answer["preview"]["attachments"] == [
        "链接卡片：冬季新品（三款新面包，本周到店） → https://hemai.example/winter", "图片：winter/1.png",
        "小程序：冬季菜单（wx1234567890abcdef · pages/menu/index.html，封面 menu-cover.png）"]
    page = await served.ops.post("/admin/calendar/new", fields)
    assert "已保存「xmas-mass」" in page
    (entry,) = await calendar_entries(sessions)
    assert entry.mass == MassAttachments(
        MassLink("冬季新品", "https://hemai.example/winter", "三款新面包，本周到店", "https://hemai.example/winter.jpg"),
        ("winter/1.png",), MiniProgram("wx1234567890abcdef", "pages/menu/index.html", "冬季菜单", "menu-cover.png"))
    form = await served.ops.get("/admin/calendar/xmas-mass/edit")  # shown back as saved, with its preview
    assert 'value="冬季新品"' in form and 'value="pages/menu/index.html"' in form
    assert "链接卡片：冬季新品" in form

    # The calendar fires; delivery makes the mass send in WeCom.
    settings = served.server.app[SETTINGS]
    options = CalendarOptions({"name": "小禾", "signature": "小禾"}, media_dir=served.media)
    report = await run_calendar(sessions, options, calendar_context(settings).renderer, SHANGHAI,
                                utcnow(), AT - timedelta(minutes=1))
    assert [(f.entry, f.error, f.members) for f in report.fired] == [("xmas-mass", None, 1)]

    async def sent() -> bool:
        return bool(cloud.mass_templates)

    await eventually(sent)
    (task,) = cloud.mass_templates
    assert task.targets == [ALICE] and task.body["text"]["content"]
    link, image, mini = task.body["attachments"]
    assert link == {"msgtype": "link", "link": {"title": "冬季新品", "url": "https://hemai.example/winter",
                                                "desc": "三款新面包，本周到店", "picurl": "https://hemai.example/winter.jpg"}}
    assert image["msgtype"] == "image" and cloud.media_valid(image["image"]["media_id"])
    assert mini["msgtype"] == "miniprogram" and cloud.media_valid(mini["miniprogram"]["pic_media_id"])
    assert {k: mini["miniprogram"][k] for k in ("title", "appid", "page")} == {
        "title": "冬季菜单", "appid": "wx1234567890abcdef", "page": "pages/menu/index.html"}
    uploaded = {cloud.media[image["image"]["media_id"]][0], cloud.media[mini["miniprogram"]["pic_media_id"]][0]}
    assert uploaded == {"1.png", "menu-cover.png"}


async def test_invalid_attachments_are_refused_by_field_and_nothing_is_stored(
    served: Served, sessions: SessionFactory
) -> None:
    bad = typed(mass_link_title="新" * 43, mass_link_url="ftp://hemai.example", mass_link_picurl="winter.jpg",
                mass_images="winter/1.png, nowhere.png, notes.txt",
                mini_appid="12345", mini_page="pages/menu/index", mini_title="菜单", mini_cover="")
    answer = await served.ops.post_json("/admin/calendar/validate", bad)
    problems = answer["problems"]
    assert answer["ok"] is False
    assert problems["mass_link_title"] == ["最多 128 个字节（一个汉字约占 3 个字节）"]
    assert problems["mass_link_url"] == ["请填 http:// 或 https:// 开头的网址"]
    assert problems["mass_link_picurl"] == ["请填 http:// 或 https:// 开头的网址"]
    assert problems["mini_appid"] == ["请填小程序的 AppID，例如 wx1234567890abcdef"]
    assert problems["mini_page"] == ["小程序页面路径要以 .html 结尾，例如 pages/index.html"]
    assert problems["mini_cover"] == ["必须填写：封面图的文件名"]
    # The files are looked at once the rest reads as an entry.
    answer = await served.ops.post_json("/admin/calendar/validate", typed(**LINK, mass_images="winter/1.png, nowhere.png, notes.txt"))
    assert answer["problems"] == {"mass_images": ["媒体文件夹里没有「nowhere.png」", "「notes.txt」不是图片"]}
    too_many = typed(**LINK, **MINI, mass_images=", ".join(["winter/1.png"] * 8))
    answer = await served.ops.post_json("/admin/calendar/validate", too_many)
    assert answer["problems"] == {"attachments": ["最多 9 个附件（企业微信的限制），现在有 10 个"]}
    answer = await served.ops.post_json("/admin/calendar/validate", typed(**LINK, channel="oa"))
    assert answer["problems"] == {"attachments": ["只有企业微信群发、客户群群发可以带群发附件"]}

    page = await served.ops.post("/admin/calendar/new", bad, expect=400)  # saving refuses it, as typed
    assert 'value="ftp://hemai.example"' in page and "请填 http:// 或 https:// 开头的网址" in page
    assert await calendar_entries(sessions) == []

    # The very problems `siyu calendar load` gives for the same entry in a file.
    context = calendar_context(served.server.app[SETTINGS])
    for fields in (bad, too_many):
        answer = await served.ops.post_json("/admin/calendar/validate", fields)
        given = sorted(p for found in answer["problems"].values() for p in found)
        _, loaded = await load_calendar(sessions, toml_of(entry_item(form_values(fields))), "f.toml", context, utcnow())
        assert given == sorted(spoken(p.split(": ", 2)[2], translator("zh")).text for p in loaded)
