"""客户朋友圈 (Moments) from the calendar, end to end against the fake cloud: an entry's
images uploaded, the post created for the customers with its tags (as corp tags), the
asynchronous job followed, each staff member WeCom asks to publish prompted with a task,
and the read-back: who published (their tasks close), who liked and commented (their
engagement), a deleted post noticed. And WeCom's limits, checked when an entry is saved."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from PIL import Image
from sqlalchemy import select, update

from bot.platforms.wecom.errors import WeComApiError
from bot.platforms.wecom.moments import ADD_TASK, UPLOAD, post_body
from bot.settings.calendar_context import calendar_context
from bot.settings.model import load_settings
from bot.shared.keys import DELIVERY
from bot.web.app import build_app
from content_templates.renderer import Renderer
from scheduler.calendar_run import CalendarOptions, load_calendar, run_calendar
from scheduler.moment_reads import queue_moment_reads
from storage.engine import SessionFactory
from storage.models import (
    CalendarEntry,
    Interaction,
    Member,
    MemberIdentity,
    MemberTag,
    OutboxEntry,
    Staff,
    StaffTask,
    Store,
    Tag,
    utcnow,
)
from storage.outbox import NewOutboxMessage, enqueue
from storage.outreach_models import MomentPost, MomentPublisher
from tests.conftest import RunningServer, eventually, start_server, write_config
from tests.fakes.wecom_cloud import FakeWeComCloud
from tests.wecom_harness import SEND, Corp, wecom_config

ALICE = "wmAJ2GCAAAXtWyujaWJHDDGi0mAAAA"
SHANGHAI = ZoneInfo("Asia/Shanghai")
PERSONA = {"name": "小禾", "title": "", "signature": "小禾 · 禾麦烘焙", "default_line": "", "tips": {}}


def image(path: Path, size: tuple[int, int] = (64, 48), kind: str = "PNG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 120, 60)).save(path, kind)


@pytest.fixture
async def synced(cloud: FakeWeComCloud, db_url: str, tmp_path: Path, http: aiohttp.ClientSession) -> AsyncIterator[RunningServer]:
    """A server with tag sync on (a post is shown by corp tags) and a media folder."""
    settings = load_settings(write_config(tmp_path, db_url, wecom_config(cloud.base_url, tag_sync_group="siyu")))
    running = await start_server(build_app(settings), http)
    yield running
    await running.stop()


async def outbox(sessions: SessionFactory) -> list[OutboxEntry]:
    async with sessions() as session:
        return list((await session.execute(select(OutboxEntry).order_by(OutboxEntry.id))).scalars())


async def deliver_due(server: RunningServer, sessions: SessionFactory) -> None:
    """Whatever waits (a job polled again later) is due now; run delivery until all settle."""
    async with sessions() as session, session.begin():
        await session.execute(update(OutboxEntry).where(OutboxEntry.status == "pending")
                              .values(not_before=utcnow() - timedelta(seconds=1)))
    server.app[DELIVERY].wake()

    async def settled() -> bool:
        rows = await outbox(sessions)
        if any(r.status == "pending" and r.not_before > utcnow() for r in rows):
            await deliver_due(server, sessions)
        return all(r.status in ("sent", "failed", "held") for r in rows)
    await eventually(settled)


async def seed(sessions: SessionFactory, cloud: FakeWeComCloud) -> None:
    corp_tag = cloud.add_tag("口味偏好", "面包控")
    cloud.add_contact("zhangsan", ALICE, "王芳", tags=[corp_tag])
    async with sessions() as session, session.begin():
        store = Store(code="jingan", name="静安店")
        session.add(store)
        await session.flush()
        staff = Staff(userid="zhangsan", name="张珊", store_id=store.id)
        session.add(staff)
        bread = Tag(name="面包控", group="口味偏好", platform_tag_id=corp_tag)
        member = Member(name="王芳", store_id=store.id)
        session.add_all([bread, member])
        await session.flush()
        assert member.id is not None and bread.id is not None
        session.add_all([MemberIdentity(member_id=member.id, platform="wecom", external_id=ALICE),
                         MemberTag(member_id=member.id, tag_id=bread.id, source="rule")])


async def test_a_moments_entry_is_posted_published_and_read_back(
    synced: RunningServer, cloud: FakeWeComCloud, sessions: SessionFactory, tmp_path: Path
) -> None:
    await seed(sessions, cloud)
    image(tmp_path / "media" / "spring" / "1.png")
    image(tmp_path / "media" / "spring" / "2.jpg", kind="JPEG")
    now = utcnow()
    at = now.replace(second=0, microsecond=0)
    async with sessions() as session, session.begin():
        session.add(CalendarEntry(
            id="spring-moments", at=at, audience=json.dumps({"tags": ["面包控"]}), template="calendar/moments_post.txt.j2",
            channel="wecom_moments", title="春日新品", attachments=json.dumps({"images": ["spring/1.png", "spring/2.jpg"]})))
    options = CalendarOptions(PERSONA, media_dir=tmp_path / "media")
    report = await run_calendar(sessions, options, Renderer(), SHANGHAI, now, since=at - timedelta(minutes=1))
    assert [(f.entry, f.rows, f.error) for f in report.fired] == [("spring-moments", 1, None)]
    await deliver_due(synced, sessions)

    uploads = cloud.calls_to(UPLOAD)
    assert [(c.query["media_type"], c.query["attachment_type"], c.json["media"]) for c in uploads] == [
        ("image", "1", "1.png"), ("image", "1", "2.jpg")]
    (call,) = cloud.calls_to(ADD_TASK)
    assert call.json["visible_range"] == {"external_contact_list": {"tag_list": [cloud.tag_id("口味偏好", "面包控")]}}
    assert [a["msgtype"] for a in call.json["attachments"]] == ["image", "image"]
    assert all(cloud.media_valid(a["image"]["media_id"]) for a in call.json["attachments"])
    assert call.json["text"]["content"].startswith("今天")
    (moment_id,) = cloud.moments
    async with sessions() as session:
        (post,) = (await session.execute(select(MomentPost))).scalars().all()
        (task,) = (await session.execute(select(StaffTask).where(StaffTask.kind == "moments_publish"))).scalars().all()
    assert (post.moment_id, post.status, post.entry) == (moment_id, "posted", "spring-moments")
    assert task.title == "发朋友圈：春日新品" and task.status == "open"
    (prompt,) = cloud.deliveries(SEND)
    assert prompt.to == "zhangsan" and "朋友圈待发表" in prompt.body["text"]["content"]
    assert "2 张图" in prompt.body["text"]["content"]

    # She publishes; a customer likes it and comments.
    cloud.staff_publishes(moment_id, "zhangsan")
    cloud.customer_reacts(moment_id, "zhangsan", ALICE, "like")
    cloud.customer_reacts(moment_id, "zhangsan", ALICE, "comment")
    for _ in range(2):  # read twice: nothing counted twice
        assert await queue_moment_reads(sessions, utcnow(), 7) == 1
        await deliver_due(synced, sessions)
    async with sessions() as session:
        done = await session.get(StaffTask, task.id)
        (publisher,) = (await session.execute(select(MomentPublisher))).scalars().all()
        events = (await session.execute(select(Interaction.text).where(Interaction.kind == "event"))).scalars().all()
        listed = (await session.get(MomentPost, post.id)).listed_at
    assert (done.status, done.note) == ("done", "已在企业微信发表")
    assert (publisher.userid, publisher.likes, publisher.comments) == ("zhangsan", 1, 1) and publisher.published_at
    assert sorted(events) == sorted(["朋友圈评论：春日新品", "朋友圈点赞：春日新品"]) and listed is not None

    cloud.delete_moment(moment_id)
    await queue_moment_reads(sessions, utcnow(), 7)
    await deliver_due(synced, sessions)
    async with sessions() as session:
        assert (await session.get(MomentPost, post.id)).status == "deleted"
    assert await queue_moment_reads(sessions, utcnow(), 7) == 0  # no longer read


async def test_a_post_shown_by_tags_needs_tag_sync(corp: Corp) -> None:
    async with corp.sessions() as session, session.begin():
        await enqueue(session, [NewOutboxMessage(
            "cal:x:moments", "wecom", "moments", "marketing", "春天来了", route="moment_task",
            meta=json.dumps({"entry": "x", "tags": [["口味偏好", "面包控"]], "images": [], "link": None}))], utcnow())
    corp.server.app[DELIVERY].wake()

    async def failed() -> bool:
        return (await outbox(corp.sessions))[0].status == "failed"
    await eventually(failed)
    assert "tag sync with WeCom is off" in str((await outbox(corp.sessions))[0].last_error)
    assert corp.cloud.calls_to(ADD_TASK) == []


async def test_moments_entries_are_checked_against_wecoms_limits_when_saved(
    settings_with_media: tuple, sessions: SessionFactory
) -> None:
    settings, media = settings_with_media
    image(media / "ok.png")
    image(media / "huge.png", (1500, 1100))  # 1,650,000 pixels
    image(media / "anim.gif", kind="GIF")
    (media / "notes.txt").write_text("not an image")
    (media.parent / "outside.png").write_bytes((media / "ok.png").read_bytes())

    async def problems(entry: str) -> list[str]:
        text = f'[[entries]]\nid = "m"\nat = "2030-01-01 10:00"\nchannel = "wecom_moments"\ntemplate = "calendar/moments_post.txt.j2"\n{entry}'
        return (await load_calendar(sessions, text, "cal.toml", calendar_context(settings), utcnow()))[1]

    ok = 'audience = { everyone = true }\nimages = ["ok.png"]'
    assert await problems(ok) == []
    found = await problems('audience = { everyone = true }\nimages = ["huge.png", "anim.gif", "notes.txt", "gone.png", "../outside.png"]')
    assert [p.split(": ", 3)[-1] for p in found] == [
        '"huge.png" is 1500×1100 = 1,650,000 pixels; WeCom takes at most 1,555,200 (e.g. 1440×1080)',
        '"anim.gif" is a GIF image; WeCom takes JPG or PNG',
        '"notes.txt" is not an image',
        f'"gone.png": no such file in {media}',
        '"../outside.png" is outside the media folder',
    ]
    found = await problems('audience = { layers = ["super"] }\nimages = ["ok.png"]\nlink = { title = "新品", url = "https://a.example", cover = "ok.png" }')
    assert any("shown by corp tags only" in p for p in found)
    assert any("images or one link, not both" in p for p in found)
    found = await problems("audience = { everyone = true }\nimages = [" + ", ".join(['"ok.png"'] * 10) + "]")
    assert any("at most 9" in p for p in found)
    found = await problems('audience = { everyone = true }\nlink = { title = "' + "新" * 30 + '", url = "ftp://x", cover = "" }')
    assert [p.split(": ", 3)[-1] for p in found] == [
        "at most 64 bytes (about 21 Chinese characters)", "an http:// or https:// address",
        "required: the cover image file (WeCom shows it beside the title)"]
    found = await problems('audience = { tags = ["面包控"] }\ntitle = "x"')
    assert found == [] or all("unknown tag" in p for p in found)
    other = '[[entries]]\nid = "n"\nat = "2030-01-01 10:00"\nchannel = "wecom_mass"\ntemplate = "calendar/new_season.txt.j2"\n'
    found = (await load_calendar(sessions, other + 'audience = { everyone = true }\nimages = ["ok.png"]', "cal.toml",
                                 calendar_context(settings), utcnow()))[1]
    assert any("only a wecom_moments entry takes images" in p for p in found)


@pytest.fixture
def settings_with_media(db_url: str, tmp_path: Path) -> tuple:
    settings = load_settings(write_config(tmp_path, db_url))
    return settings, Path(settings.calendar.media_dir)


async def test_the_cloud_refuses_what_wecom_refuses(cloud: FakeWeComCloud) -> None:
    from tenacity import wait_none

    from bot.platforms.wecom import moments as api
    from bot.platforms.wecom.client import WeComClient
    from tests.wecom_harness import CORP, SECRET
    async with aiohttp.ClientSession() as http:
        client = WeComClient(http, cloud.base_url, CORP, SECRET, retry_wait=wait_none())
        for body, code in ((post_body("字" * 2001), 45002), (post_body(""), 44004),
                           (post_body("x", ["not-a-media-id"]), 40007)):
            with pytest.raises(WeComApiError) as refused:
                await api.add_moment_task(client, body)
            assert refused.value.errcode == code
