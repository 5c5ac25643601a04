"""Tag sync with WeCom corp tags, end to end: outbox rows sent by the real delivery loop
to the fake WeCom cloud, signed callbacks into the real server, effects asserted in our
database and in what the fake cloud received and holds."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from bot.settings.model import load_settings
from bot.shared.keys import DELIVERY
from bot.web.app import build_app
from storage.engine import SessionFactory
from storage.members import member_by_identity, resolve_member
from storage.models import OutboxEntry, Tag, utcnow
from storage.outbox import NewOutboxMessage, enqueue
from storage.tags import apply_tag, ensure_tag, tags_of
from tests.conftest import eventually, start_server, write_config
from tests.fakes.wecom_cloud import FakeWeComCloud
from tests.test_wecom_flow import kf_event
from tests.wecom_harness import CORP, Corp, contact_event, wecom_config

SYNC_GROUP = "私域同步"
ALICE = "wmAJ2GCAAAXtWyujaWJHDDGi0mAAAA"
BOB = "wmAJ2GCAAAXtWyujaWJHDDGi0mBBBB"
MARK = "/cgi-bin/externalcontact/mark_tag"
ADD_TAG = "/cgi-bin/externalcontact/add_corp_tag"
TAG_LIST = "/cgi-bin/externalcontact/get_corp_tag_list"
TASTE = "口味偏好"

_rows = itertools.count(1)
_stamps = itertools.count(int(time.time()))


@pytest.fixture
async def synced(
    cloud: FakeWeComCloud, db_url: str, tmp_path: Path, http: aiohttp.ClientSession, sessions: SessionFactory
) -> AsyncIterator[Corp]:
    """The corp of tests/wecom_harness.py with tag sync on."""
    config = wecom_config(cloud.base_url, tag_sync_group=SYNC_GROUP)
    running = await start_server(build_app(load_settings(write_config(tmp_path, db_url, config))), http)
    yield Corp(cloud, running, sessions)
    await running.stop()


# -- helpers --------------------------------------------------------------------------------


async def new_contact(corp: Corp, external: str, name: str, staff: str = "zhangsan", tags: Sequence[str] = ()) -> int:
    """She adds `staff` in WeCom; returns her member id once her profile was read."""
    corp.cloud.add_contact(staff, external, name, tags=tags)
    assert (await corp.callback(contact_event("add_external_contact", external, staff)))[0] == 200

    async def profiled() -> bool:
        async with corp.sessions() as session:
            found = await member_by_identity(session, "wecom", external)
        return found is not None and found.name == name

    await eventually(profiled)
    async with corp.sessions() as session:
        found = await member_by_identity(session, "wecom", external)
    assert found is not None and found.id is not None
    return found.id


async def give_rule_tag(corp: Corp, member_id: int, group: str, name: str) -> None:
    async with corp.sessions() as session, session.begin():
        tag = await ensure_tag(session, name, group)
        await apply_tag(session, member_id, tag, "rule", "interest-bread", utcnow())


async def send_mark(
    corp: Corp,
    external: str,
    member_id: int | None,
    add: Sequence[tuple[str, str]] = (),
    remove: Sequence[tuple[str, str]] = (),
) -> OutboxEntry:
    """Queue a mark_tag row as handlers/outbound.py writes it, let delivery send it, and
    return the row once it is settled."""
    meta = json.dumps({"add": [list(t) for t in add], "remove": [list(t) for t in remove]}, ensure_ascii=False)
    key = f"test-tags:{next(_rows)}"
    async with corp.sessions() as session, session.begin():
        await enqueue(session, [NewOutboxMessage(
            key, "wecom", external, "request", "", member_id=member_id, route="mark_tag", meta=meta,
        )], utcnow())
    corp.server.app[DELIVERY].wake()
    return await settled(corp, key)


async def settled(corp: Corp, key: str) -> OutboxEntry:
    async def done() -> bool:
        async with corp.sessions() as session:
            row = (await session.execute(select(OutboxEntry).where(OutboxEntry.dedupe_key == key))).scalars().one()
        return row.status in ("sent", "failed")

    await eventually(done)
    async with corp.sessions() as session:
        return (await session.execute(select(OutboxEntry).where(OutboxEntry.dedupe_key == key))).scalars().one()


async def tag_changed(corp: Corp, tag_id: str, change: str) -> OutboxEntry:
    """WeCom's change_external_tag callback; returns the corp_tags row once settled."""
    event = (f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
             f"<CreateTime>{next(_stamps)}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
             f"<Event><![CDATA[change_external_tag]]></Event><Id><![CDATA[{tag_id}]]></Id>"
             f"<TagType><![CDATA[tag]]></TagType><ChangeType><![CDATA[{change}]]></ChangeType></xml>")
    async with corp.sessions() as session:
        before = len((await session.execute(select(OutboxEntry.id).where(OutboxEntry.route == "corp_tags"))).all())
    assert (await corp.callback(event))[0] == 200

    async def handled() -> bool:
        async with corp.sessions() as session:
            rows = (await session.execute(select(OutboxEntry).where(OutboxEntry.route == "corp_tags"))).scalars().all()
        return len(rows) > before and all(r.status in ("sent", "failed") for r in rows)

    await eventually(handled)
    async with corp.sessions() as session:
        return (await session.execute(
            select(OutboxEntry).where(OutboxEntry.route == "corp_tags").order_by(OutboxEntry.id.desc())  # type: ignore[union-attr]
        )).scalars().first()  # type: ignore[return-value]


async def edited_in_wecom(corp: Corp, external: str, staff: str = "zhangsan") -> None:
    """The edit_external_contact callback, and the profile fetch it leads to."""
    async with corp.sessions() as session:
        before = len((await session.execute(select(OutboxEntry.id).where(OutboxEntry.route == "profile"))).all())
    assert (await corp.callback(contact_event("edit_external_contact", external, staff, created=next(_stamps))))[0] == 200

    async def fetched() -> bool:
        async with corp.sessions() as session:
            rows = (await session.execute(select(OutboxEntry).where(OutboxEntry.route == "profile"))).scalars().all()
        return len(rows) > before and all(r.status == "sent" for r in rows)

    await eventually(fetched)


async def member_tags(corp: Corp, member_id: int) -> list[tuple[str, str, str]]:
    async with corp.sessions() as session:
        return [(t.group, t.name, t.source) for t in await tags_of(session, member_id)]


async def our_tag(corp: Corp, group: str, name: str) -> Tag | None:
    async with corp.sessions() as session:
        return (await session.execute(select(Tag).where(Tag.group == group, Tag.name == name))).scalars().first()


# -- our tags into WeCom ----------------------------------------------------------------------


async def test_a_rule_tag_is_created_in_the_sync_group_marked_as_the_owner_and_its_id_reused(synced: Corp) -> None:
    cloud = synced.cloud
    alice = await new_contact(synced, ALICE, "王芳", "zhangsan")
    bob = await new_contact(synced, BOB, "李娜", "lisi")
    await give_rule_tag(synced, alice, TASTE, "面包控")

    row = await send_mark(synced, ALICE, alice, add=[(TASTE, "面包控")])

    assert (row.status, row.last_error) == ("sent", None)
    corp_tag = cloud.tag_id(SYNC_GROUP, "面包控")
    assert corp_tag is not None
    (created,) = cloud.calls_to(ADD_TAG)
    assert created.json == {"group_name": SYNC_GROUP, "tag": [{"name": "面包控"}]}
    (marked,) = cloud.calls_to(MARK)
    assert marked.json == {"userid": "zhangsan", "external_userid": ALICE, "add_tag": [corp_tag], "remove_tag": []}
    assert cloud.follow_tags("zhangsan", ALICE) == [corp_tag]
    tag = await our_tag(synced, TASTE, "面包控")
    assert tag is not None and tag.platform_tag_id == corp_tag

    # The same tag on another member (another owner): the stored id, no new corp tag and
    # no second read of the list.
    await give_rule_tag(synced, bob, TASTE, "面包控")
    assert (await send_mark(synced, BOB, bob, add=[(TASTE, "面包控")])).status == "sent"
    assert len(cloud.calls_to(ADD_TAG)) == 1 and len(cloud.calls_to(TAG_LIST)) == 1
    assert cloud.calls_to(MARK)[-1].json["userid"] == "lisi"
    assert cloud.follow_tags("lisi", BOB) == [corp_tag]

    # And taken off again.
    assert (await send_mark(synced, ALICE, alice, remove=[(TASTE, "面包控")])).status == "sent"
    assert cloud.calls_to(MARK)[-1].json == {"userid": "zhangsan", "external_userid": ALICE, "add_tag": [], "remove_tag": [corp_tag]}
    assert cloud.follow_tags("zhangsan", ALICE) == []
    assert len(cloud.calls_to(ADD_TAG)) == 1 and len(cloud.calls_to(TAG_LIST)) == 1


async def test_an_existing_corp_tag_is_used_not_created(synced: Corp) -> None:
    same_group = synced.cloud.add_tag(TASTE, "面包控")
    in_sync_group = synced.cloud.add_tag(SYNC_GROUP, "控糖")
    alice = await new_contact(synced, ALICE, "王芳")

    row = await send_mark(synced, ALICE, alice, add=[(TASTE, "面包控"), ("健康", "控糖")])

    assert row.status == "sent" and synced.cloud.calls_to(ADD_TAG) == []
    assert synced.cloud.follow_tags("zhangsan", ALICE) == [same_group, in_sync_group]
    bread, sugar = await our_tag(synced, TASTE, "面包控"), await our_tag(synced, "健康", "控糖")
    assert bread is not None and bread.platform_tag_id == same_group
    assert sugar is not None and sugar.platform_tag_id == in_sync_group


async def test_a_member_without_an_owner_is_marked_as_the_staff_who_added_her_first(synced: Corp) -> None:
    synced.cloud.add_contact("zhangsan", ALICE, "王芳")
    synced.cloud.add_contact("lisi", ALICE, "王芳")
    synced.cloud.follows[-1].createtime -= 3600  # lisi was first
    async with synced.sessions() as session, session.begin():
        member = await resolve_member(session, "wecom", ALICE, "王芳", utcnow())  # heard of, owner unknown
    assert member.id is not None and member.owner_staff_id is None

    row = await send_mark(synced, ALICE, member.id, add=[(TASTE, "面包控")])

    assert row.status == "sent"
    assert synced.cloud.calls_to(MARK)[-1].json["userid"] == "lisi"
    assert synced.cloud.follow_tags("lisi", ALICE) == [synced.cloud.tag_id(SYNC_GROUP, "面包控")]
    assert synced.cloud.follow_tags("zhangsan", ALICE) == []


async def test_a_tag_name_over_30_characters_fails_the_row_clearly(synced: Corp) -> None:
    alice = await new_contact(synced, ALICE, "王芳")
    name = "超" * 31

    row = await send_mark(synced, ALICE, alice, add=[(TASTE, name)])

    assert row.status == "failed"
    assert row.last_error is not None and "31 characters" in row.last_error and "at most 30" in row.last_error
    assert synced.cloud.calls_to(ADD_TAG) == [] and synced.cloud.calls_to(MARK) == []


async def test_without_a_tag_sync_group_marks_fail_clearly_and_tag_events_read_nothing(corp: Corp) -> None:
    alice = await new_contact(corp, ALICE, "王芳")

    row = await send_mark(corp, ALICE, alice, add=[(TASTE, "面包控")])

    assert row.status == "failed"
    assert row.last_error is not None and "tag_sync_group" in row.last_error and "off" in row.last_error
    assert (await tag_changed(corp, "etAnyTagId000001", "update")).status == "sent"
    assert corp.cloud.calls_to(MARK) == [] and corp.cloud.calls_to(ADD_TAG) == [] and corp.cloud.calls_to(TAG_LIST) == []


# -- WeCom's changes into ours ----------------------------------------------------------------


async def test_a_corp_tag_renamed_in_wecom_renames_ours_unless_the_name_is_taken(synced: Corp) -> None:
    alice = await new_contact(synced, ALICE, "王芳")
    await give_rule_tag(synced, alice, TASTE, "面包控")
    assert (await send_mark(synced, ALICE, alice, add=[(TASTE, "面包控")])).status == "sent"
    corp_tag = synced.cloud.tag_id(SYNC_GROUP, "面包控")
    assert corp_tag is not None

    synced.cloud.rename_tag(corp_tag, "面包达人")
    row = await tag_changed(synced, corp_tag, "update")

    assert row.status == "sent"
    renamed = await our_tag(synced, TASTE, "面包达人")
    assert renamed is not None and renamed.platform_tag_id == corp_tag
    assert await our_tag(synced, TASTE, "面包控") is None
    assert await member_tags(synced, alice) == [(TASTE, "面包达人", "rule")]

    # Renamed again, to a name another of our tags in that group has: ours stays.
    async with synced.sessions() as session, session.begin():
        await ensure_tag(session, "欧包", TASTE)
    synced.cloud.rename_tag(corp_tag, "欧包")
    assert (await tag_changed(synced, corp_tag, "update")).status == "sent"
    kept = await our_tag(synced, TASTE, "面包达人")
    assert kept is not None and kept.platform_tag_id == corp_tag
    other = await our_tag(synced, TASTE, "欧包")
    assert other is not None and other.platform_tag_id is None
    # Still linked by id: marking ours again needs no new corp tag despite the names.
    assert (await send_mark(synced, ALICE, alice, add=[(TASTE, "面包达人")])).status == "sent"
    assert len(synced.cloud.calls_to(ADD_TAG)) == 1
    assert synced.cloud.calls_to(MARK)[-1].json["add_tag"] == [corp_tag]


async def test_a_corp_tag_deleted_in_wecom_unlinks_ours_and_removes_only_what_wecom_gave(synced: Corp) -> None:
    alice = await new_contact(synced, ALICE, "王芳", "zhangsan")
    bob = await new_contact(synced, BOB, "李娜", "lisi")
    # Bob has it by our rule, marked into WeCom …
    await give_rule_tag(synced, bob, TASTE, "面包控")
    assert (await send_mark(synced, BOB, bob, add=[(TASTE, "面包控")])).status == "sent"
    corp_tag = synced.cloud.tag_id(SYNC_GROUP, "面包控")
    assert corp_tag is not None
    # … Alice because her staff set it on her in WeCom: it comes back as our linked tag.
    synced.cloud.staff_sets_tags("zhangsan", ALICE, add=[corp_tag])
    await edited_in_wecom(synced, ALICE)
    assert await member_tags(synced, alice) == [(TASTE, "面包控", "platform")]
    assert await our_tag(synced, SYNC_GROUP, "面包控") is None  # found by id, not made anew

    synced.cloud.delete_tag(corp_tag)
    row = await tag_changed(synced, corp_tag, "delete")

    assert row.status == "sent"
    tag = await our_tag(synced, TASTE, "面包控")
    assert tag is not None and tag.platform_tag_id is None
    assert await member_tags(synced, alice) == []
    assert await member_tags(synced, bob) == [(TASTE, "面包控", "rule")]

    # A later mark of the same tag makes a new corp tag rather than use the dead id.
    assert (await send_mark(synced, BOB, bob, add=[(TASTE, "面包控")])).status == "sent"
    fresh = synced.cloud.tag_id(SYNC_GROUP, "面包控")
    assert fresh is not None and fresh != corp_tag
    assert synced.cloud.follow_tags("lisi", BOB) == [fresh]


async def test_corp_tags_staff_set_and_remove_in_wecom_follow_on_our_member(synced: Corp) -> None:
    gold = synced.cloud.add_tag("会员等级", "金卡")
    alice = await new_contact(synced, ALICE, "王芳", tags=[gold])
    assert await member_tags(synced, alice) == [("会员等级", "金卡", "platform")]
    linked = await our_tag(synced, "会员等级", "金卡")
    assert linked is not None and linked.platform_tag_id == gold

    synced.cloud.staff_sets_tags("zhangsan", ALICE, remove=[gold])
    await edited_in_wecom(synced, ALICE)

    assert await member_tags(synced, alice) == []
    still = await our_tag(synced, "会员等级", "金卡")
    assert still is not None and still.platform_tag_id == gold  # the corp tag itself lives on


async def test_a_tag_whose_mark_is_still_queued_survives_a_profile_read(synced: Corp) -> None:
    alice = await new_contact(synced, ALICE, "王芳", "zhangsan")
    bob = await new_contact(synced, BOB, "李娜", "lisi")
    await give_rule_tag(synced, bob, TASTE, "面包控")
    assert (await send_mark(synced, BOB, bob, add=[(TASTE, "面包控")])).status == "sent"  # now a linked tag
    # A rule gives Alice the tag; its mark waits in the outbox while her profile is read,
    # so WeCom does not list it on her yet. That is no removal by staff.
    await give_rule_tag(synced, alice, TASTE, "面包控")
    meta = json.dumps({"add": [[TASTE, "面包控"]], "remove": []}, ensure_ascii=False)
    async with synced.sessions() as session, session.begin():
        await enqueue(session, [NewOutboxMessage(
            "test-tags:queued", "wecom", ALICE, "request", "", member_id=alice, route="mark_tag", meta=meta,
            not_before=utcnow() + timedelta(hours=1),
        )], utcnow())

    await edited_in_wecom(synced, ALICE)

    assert await member_tags(synced, alice) == [(TASTE, "面包控", "rule")]
    assert synced.cloud.follow_tags("zhangsan", ALICE) == []


async def test_a_corp_tag_deleted_while_its_callback_was_lost_is_made_anew_on_the_next_try(synced: Corp) -> None:
    alice = await new_contact(synced, ALICE, "王芳")
    await give_rule_tag(synced, alice, TASTE, "面包控")
    assert (await send_mark(synced, ALICE, alice, add=[(TASTE, "面包控")])).status == "sent"
    dead = synced.cloud.tag_id(SYNC_GROUP, "面包控")
    assert dead is not None
    synced.cloud.delete_tag(dead)  # and no change_external_tag reaches us

    row = await send_mark(synced, ALICE, alice, add=[(TASTE, "面包控")])  # 40068 once, then read the list again

    assert row.status == "sent" and row.attempts == 2
    fresh = synced.cloud.tag_id(SYNC_GROUP, "面包控")
    assert fresh is not None and fresh != dead
    assert synced.cloud.follow_tags("zhangsan", ALICE) == [fresh]
    tag = await our_tag(synced, TASTE, "面包控")
    assert tag is not None and tag.platform_tag_id == fresh


async def test_a_tag_a_rule_gives_in_chat_is_marked_on_her_in_wecom(synced: Corp) -> None:
    await new_contact(synced, ALICE, "王芳", "zhangsan")
    token = synced.cloud.customer_writes("wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q", ALICE, "想买两条全麦吐司")
    assert (await synced.callback(kf_event(token)))[0] == 200

    async def marked() -> bool:
        corp_tag = synced.cloud.tag_id(SYNC_GROUP, "面包控")
        return corp_tag is not None and synced.cloud.follow_tags("zhangsan", ALICE) == [corp_tag]

    await eventually(marked)
    (call,) = synced.cloud.calls_to(MARK)
    assert call.json["userid"] == "zhangsan" and call.json["external_userid"] == ALICE
