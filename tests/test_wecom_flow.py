"""WeCom and the official account end to end: signed callbacks into the real server,
effects asserted in the database and in what the fake WeCom cloud received."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
from sqlalchemy import select
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.platforms.wecom.keys import WECOM_CLIENT
from bot.platforms.wecom.reconcile import reconcile_contacts
from bot.platforms.wecom.xml import parse_fields
from bot.shared.keys import SESSIONS
from storage.members import member_by_identity
from storage.models import (
    CustomerGroup,
    GroupMembership,
    Member,
    MemberIdentity,
    OutboxEntry,
    PlatformCursor,
    Staff,
    StaffTask,
    Store,
)
from storage.tags import tags_of
from tests.conftest import eventually
from tests.wecom_harness import (
    AES_KEY,
    CORP,
    CUSTOM,
    KF_SEND,
    OA_OLD_AES_KEY,
    SEND,
    TOKEN,
    WELCOME,
    Corp,
    contact_event,
)

ALICE = "wmAJ2GCAAAXtWyujaWJHDDGi0mAAAA"
BOB = "wmAJ2GCAAAXtWyujaWJHDDGi0mBBBB"


async def member(corp: Corp, external: str, platform: str = "wecom") -> Member | None:
    async with corp.sessions() as session:
        return await member_by_identity(session, platform, external)


async def test_url_verification_answers_the_decrypted_echostr(corp: Corp) -> None:
    timestamp, nonce = "1409659589", "263014780"
    reply = parse_fields(WeChatCrypto(TOKEN, AES_KEY, CORP).encrypt_message("1616140317555161061", nonce, timestamp))
    query = {"msg_signature": reply["MsgSignature"], "timestamp": timestamp, "nonce": nonce, "echostr": reply["Encrypt"]}
    async with corp.server.client.get(f"{corp.server.base}/wecom/callback?{urlencode(query)}") as response:
        assert response.status == 200
        assert await response.read() == b"1616140317555161061"  # bare: no quotes, no newline
    query["msg_signature"] = "0" * 40
    async with corp.server.client.get(f"{corp.server.base}/wecom/callback?{urlencode(query)}") as response:
        assert response.status == 403


async def test_a_new_contact_from_a_channel_is_tagged_owned_and_welcomed(corp: Corp) -> None:
    async with corp.sessions() as session, session.begin():
        session.add(Store(code="jingan", name="静安店"))
    corp.cloud.add_contact("zhangsan", ALICE, "王芳", unionid="union-alice", state="poster-jingan")
    code = corp.cloud.issue_welcome_code(ALICE, "zhangsan")

    status, body = await corp.callback(contact_event("add_external_contact", ALICE, State="poster-jingan", WelcomeCode=code))
    assert (status, body) == (200, "")

    async def welcomed_and_profiled() -> bool:
        found = await member(corp, ALICE)
        return bool(corp.cloud.deliveries(WELCOME)) and found is not None and found.name == "王芳"

    await eventually(welcomed_and_profiled)
    (welcome,) = corp.cloud.deliveries(WELCOME)
    assert "小禾" in welcome.body["text"]["content"] and "静安店" in welcome.body["text"]["content"]
    found = await member(corp, ALICE)
    assert found is not None and found.id is not None
    async with corp.sessions() as session:
        owner = await session.get(Staff, found.owner_staff_id)
        store = await session.get(Store, found.store_id)
        tags = await tags_of(session, found.id)
    assert owner is not None and owner.userid == "zhangsan"
    assert store is not None and store.code == "jingan"
    assert found.unionid == "union-alice" and found.avatar_url
    assert [(t.name, t.group, t.source, t.source_ref) for t in tags] == [("门店海报", "渠道", "platform", "channel:poster-jingan")]


async def test_no_welcome_code_means_no_welcome_from_us(corp: Corp) -> None:
    corp.cloud.add_contact("zhangsan", BOB, "李娜")
    assert (await corp.callback(contact_event("add_external_contact", BOB)))[0] == 200

    async def profiled() -> bool:
        found = await member(corp, BOB)
        return found is not None and found.name == "李娜"

    await eventually(profiled)
    assert corp.cloud.deliveries(WELCOME) == []


async def test_a_callback_sent_three_times_is_processed_once(corp: Corp) -> None:
    corp.cloud.add_contact("zhangsan", ALICE, "王芳")
    code = corp.cloud.issue_welcome_code(ALICE, "zhangsan")
    query, body = corp.envelope(contact_event("add_external_contact", ALICE, created=1700000000, WelcomeCode=code))
    for _ in range(3):  # WeCom's retries carry the same message
        assert (await corp.post(query, body))[0] == 200
    # And a retry re-encrypted with a fresh nonce: the same event all the same.
    assert (await corp.callback(contact_event("add_external_contact", ALICE, created=1700000000, WelcomeCode=code)))[0] == 200

    await eventually(lambda: _has(corp.cloud.deliveries(WELCOME)))
    async with corp.sessions() as session:
        identities = (await session.execute(select(MemberIdentity))).scalars().all()
    assert await corp.inbox_rows() == 1 and len(identities) == 1
    assert len(corp.cloud.deliveries(WELCOME)) == 1


async def _has(items: list) -> bool:  # type: ignore[type-arg]
    return bool(items)


async def test_a_member_deleting_the_staff_is_churn_with_a_prompt_to_the_owner(corp: Corp) -> None:
    corp.cloud.add_contact("zhangsan", ALICE, "王芳")
    await corp.callback(contact_event("add_external_contact", ALICE))
    await eventually(lambda: _named(corp, ALICE, "王芳"))
    corp.cloud.remove_contact("zhangsan", ALICE)

    assert (await corp.callback(contact_event("del_follow_user", ALICE)))[0] == 200

    await eventually(lambda: _has(corp.cloud.deliveries(SEND)))
    (prompt,) = corp.cloud.deliveries(SEND)
    assert prompt.to == "zhangsan" and "王芳" in prompt.body["text"]["content"]
    found = await member(corp, ALICE)
    assert found is not None and found.left_at is not None and found.left_reason == "deleted_staff"
    async with corp.sessions() as session:
        (task,) = (await session.execute(select(StaffTask))).scalars().all()
    assert task.kind == "churn_follow_up" and task.member_id == found.id


async def _named(corp: Corp, external: str, name: str) -> bool:
    found = await member(corp, external)
    return found is not None and found.name == name


async def test_a_transfer_is_not_churn(corp: Corp) -> None:
    corp.cloud.add_contact("zhangsan", ALICE, "王芳")
    await corp.callback(contact_event("add_external_contact", ALICE))
    await eventually(lambda: _named(corp, ALICE, "王芳"))
    await corp.callback(contact_event("del_external_contact", ALICE, Source="DELETE_BY_TRANSFER"))
    await corp.callback(contact_event("edit_external_contact", ALICE))

    async def both_handled() -> bool:
        async with corp.sessions() as session:
            rows = (await session.execute(select(OutboxEntry.route))).scalars().all()
        return rows.count("profile") == 2

    await eventually(both_handled)
    found = await member(corp, ALICE)
    assert found is not None and found.left_at is None
    assert corp.cloud.deliveries(SEND) == []


def chat_event(chat: str, change: str, detail: str = "", members: tuple[str, ...] = (), created: int | None = None) -> str:
    items = "".join(f"<Item>{m}</Item>" for m in members)
    extra = f"<UpdateDetail>{detail}</UpdateDetail><JoinScene>3</JoinScene><MemChangeList>{items}</MemChangeList>" if detail else ""
    return (f"<xml><ToUserName>{CORP}</ToUserName><FromUserName>sys</FromUserName><CreateTime>{created or int(time.time())}</CreateTime>"
            f"<MsgType>event</MsgType><Event>change_external_chat</Event><ChatId>{chat}</ChatId><ChangeType>{change}</ChangeType>{extra}</xml>")


async def test_joining_and_leaving_a_customer_group_is_recorded(corp: Corp) -> None:
    corp.cloud.add_contact("zhangsan", ALICE, "王芳")
    await corp.callback(contact_event("add_external_contact", ALICE))
    await eventually(lambda: _named(corp, ALICE, "王芳"))
    # What WeCom reports once the dust settles: she is in, he came and went.
    corp.cloud.add_group("wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA", "面包爱好者群", "zhangsan", [ALICE])

    await corp.callback(chat_event("wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA", "create"))
    await corp.callback(chat_event("wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA", "update", "add_member", (ALICE, BOB), created=1700000001))
    await corp.callback(chat_event("wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA", "update", "del_member", (BOB,), created=1700000002))

    async def recorded() -> bool:
        async with corp.sessions() as session:
            group = (await session.execute(select(CustomerGroup))).scalars().first()
            stays = (await session.execute(select(GroupMembership))).scalars().all()
        return group is not None and group.name == "面包爱好者群" and any(s.left_at for s in stays)

    await eventually(recorded)
    async with corp.sessions() as session:
        stays = {s.user_id: s for s in (await session.execute(select(GroupMembership))).scalars()}
        alice = await member_by_identity(session, "wecom", ALICE)
    assert stays[ALICE].left_at is None and stays[ALICE].member_id == alice.id  # type: ignore[union-attr]
    assert stays[BOB].left_at is not None and stays[BOB].member_id is None  # not (yet) our member

    await corp.callback(chat_event("wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA", "dismiss"))

    async def dismissed() -> bool:
        async with corp.sessions() as session:
            group = (await session.execute(select(CustomerGroup))).scalars().one()
        return group.dismissed_at is not None

    await eventually(dismissed)


def kf_event(token: str, open_kfid: str = "wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q") -> str:
    return (f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><CreateTime>{int(time.time())}</CreateTime>"
            f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>"
            f"<Token><![CDATA[{token}]]></Token><OpenKfId><![CDATA[{open_kfid}]]></OpenKfId></xml>")


async def test_a_customer_service_message_is_pulled_and_gets_a_persona_reply(corp: Corp) -> None:
    token = corp.cloud.customer_writes("wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q", ALICE, "吐司今天还有吗")
    assert (await corp.callback(kf_event(token)))[0] == 200

    await eventually(lambda: _has(corp.cloud.deliveries(KF_SEND)))
    (reply,) = corp.cloud.deliveries(KF_SEND)
    assert reply.to == ALICE and "小禾" in reply.body["text"]["content"] and "面包控" in reply.body["text"]["content"]
    found = await member(corp, ALICE)
    assert found is not None and found.id is not None
    async with corp.sessions() as session:
        assert [t.name for t in await tags_of(session, found.id)] == ["面包控"]
        cursor = (await session.execute(select(PlatformCursor))).scalars().one()
    assert cursor.cursor  # kept, so the next pull starts after this message

    # The next trigger pulls only what is new.
    token = corp.cloud.customer_writes("wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q", ALICE, "好的谢谢")
    await corp.callback(kf_event(token))
    await eventually(lambda: _count_at_least(corp.cloud.deliveries(KF_SEND), 2))
    assert len(corp.cloud.deliveries(KF_SEND)) == 2


async def _count_at_least(items: list, n: int) -> bool:  # type: ignore[type-arg]
    return len(items) >= n


async def test_a_45009_storm_delays_the_reply_but_loses_and_doubles_nothing(corp: Corp) -> None:
    corp.cloud.fail_next(KF_SEND, 45009, times=3)  # within the client's retries
    token = corp.cloud.customer_writes("wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q", BOB, "你好")
    await corp.callback(kf_event(token))
    async def recorded() -> bool:  # the send is recorded just after WeCom's answer
        async with corp.sessions() as session:
            rows = (await session.execute(select(OutboxEntry).where(OutboxEntry.route == "message"))).scalars().all()
        return [row.status for row in rows] == ["sent"]

    await eventually(recorded)
    assert len(corp.cloud.calls_to(KF_SEND)) == 4 and len(corp.cloud.deliveries(KF_SEND)) == 1


@pytest.mark.parametrize(
    ("tamper", "status"),
    [
        ("signature", 403),
        ("receiveid", 400),
        ("base64", 400),
        ("padding", 400),
        ("dtd", 400),
        ("envelope", 400),
        ("oversized", 413),
        ("missing-query", 400),
    ],
)
async def test_a_rejected_callback_stores_nothing(corp: Corp, tamper: str, status: int) -> None:
    query, body = corp.envelope(contact_event("add_external_contact", ALICE))
    if tamper == "signature":
        query["msg_signature"] = "0" * 40
    elif tamper == "receiveid":
        query, body = corp.envelope(contact_event("add_external_contact", ALICE), corp="wwsomeoneelse")
    elif tamper == "base64":
        body = body.replace("<Encrypt><![CDATA[", "<Encrypt><![CDATA[%%%")
        query["msg_signature"] = _resign(body, query)
    elif tamper == "padding":
        query, body = corp.envelope(contact_event("add_external_contact", ALICE), key="kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR")
    elif tamper == "dtd":
        body = '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY boom "boom">]><xml><Encrypt>&boom;</Encrypt></xml>'
    elif tamper == "envelope":
        body = "<xml><Foo>bar</Foo></xml>"
    elif tamper == "oversized":
        body = "<xml>" + "x" * 300_000 + "</xml>"
    elif tamper == "missing-query":
        del query["nonce"]
    assert (await corp.post(query, body))[0] == status
    assert await corp.inbox_rows() == 0


def _resign(body: str, query: dict[str, str]) -> str:
    from bot.platforms.wecom.crypto import sha1_signature

    return sha1_signature(TOKEN, query["timestamp"], query["nonce"], parse_fields(body)["Encrypt"])


async def test_reconciliation_repairs_missed_events_without_duplicating_members(corp: Corp) -> None:
    corp.cloud.add_contact("zhangsan", ALICE, "王芳", unionid="union-alice")
    await corp.callback(contact_event("add_external_contact", ALICE))
    await eventually(lambda: _named(corp, ALICE, "王芳"))
    # Two callbacks lost: BOB was added and ALICE left, and we heard of neither.
    corp.cloud.add_contact("lisi", BOB, "李娜")
    corp.cloud.remove_contact("zhangsan", ALICE)

    report = await reconcile_contacts(corp.server.app[WECOM_CLIENT], corp.server.app[SESSIONS])
    again = await reconcile_contacts(corp.server.app[WECOM_CLIENT], corp.server.app[SESSIONS])

    assert (report.contacts, report.created, report.churned) == (1, 1, 1)
    assert (again.created, again.churned) == (0, 0)
    bob, alice = await member(corp, BOB), await member(corp, ALICE)
    assert bob is not None and bob.name == "李娜" and bob.left_at is None
    assert alice is not None and alice.left_reason == "missing_from_customer_list"
    async with corp.sessions() as session:
        assert len((await session.execute(select(Member))).scalars().all()) == 2
        owner = await session.get(Staff, bob.owner_staff_id)
    assert owner is not None and owner.userid == "lisi"


def oa_text(openid: str, text: str, msgid: int) -> str:
    return (f"<xml><ToUserName><![CDATA[gh_brand]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{text}]]></Content><MsgId>{msgid}</MsgId></xml>")


async def test_official_account_safe_mode_messages_get_replies_and_plaintext_is_refused(corp: Corp) -> None:
    corp.cloud.user_writes("oFollowerPlain01")
    corp.cloud.user_writes("oFollowerSafe001")
    # An encoding_aes_key is configured: a plaintext body is refused (tests/test_oa_safe_mode.py).
    assert (await corp.oa_post(oa_text("oFollowerPlain01", "你好", 1), key=None))[0] == 403
    assert await corp.oa_post(oa_text("oFollowerSafe001", "想要吐司", 2)) == (200, "success")
    assert (await corp.oa_post(oa_text("oFollowerSafe001", "旧密钥", 3), key=OA_OLD_AES_KEY))[0] == 200

    await eventually(lambda: _count_at_least(corp.cloud.deliveries(CUSTOM), 2))
    assert sorted(d.to for d in corp.cloud.deliveries(CUSTOM)) == ["oFollowerSafe001", "oFollowerSafe001"]


async def test_official_account_signatures_are_checked(corp: Corp) -> None:
    query = {"signature": "0" * 40, "timestamp": "1714036504", "nonce": "1514711492", "echostr": "4375120948345356249"}
    async with corp.server.client.get(f"{corp.server.base}/oa/callback?{urlencode(query)}") as response:
        assert response.status == 403
    from bot.platforms.wecom.crypto import sha1_signature

    query["signature"] = sha1_signature("spamtest", "1714036504", "1514711492")
    async with corp.server.client.get(f"{corp.server.base}/oa/callback?{urlencode(query)}") as response:
        assert (response.status, await response.text()) == (200, "4375120948345356249")
    assert await corp.inbox_rows() == 0


async def test_unionid_links_an_official_account_follower_to_her_wecom_member(corp: Corp) -> None:
    corp.cloud.add_contact("zhangsan", ALICE, "王芳", unionid="union-alice")
    await corp.callback(contact_event("add_external_contact", ALICE))
    await eventually(lambda: _named(corp, ALICE, "王芳"))
    corp.cloud.add_follower("oAliceOpenid0001", unionid="union-alice")
    subscribe = (f"<xml><ToUserName>gh_brand</ToUserName><FromUserName>oAliceOpenid0001</FromUserName>"
                 f"<CreateTime>{int(time.time())}</CreateTime><MsgType>event</MsgType><Event>subscribe</Event></xml>")
    assert (await corp.oa_post(subscribe))[0] == 200

    async def linked() -> bool:
        follower, contact = await member(corp, "oAliceOpenid0001", "oa"), await member(corp, ALICE)
        return follower is not None and contact is not None and follower.id == contact.id

    await eventually(linked)
    async with corp.sessions() as session:
        assert len((await session.execute(select(Member))).scalars().all()) == 1


async def test_other_contact_chat_and_tag_events_are_kept_and_applied(corp: Corp) -> None:
    corp.cloud.add_contact("zhangsan", ALICE, "王芳")
    corp.cloud.add_group("wrGroupRenamed000000000000AAAA", "新名字", "lisi", [ALICE])
    events = [
        contact_event("add_half_external_contact", ALICE),
        contact_event("transfer_fail", ALICE, FailReason="customer_refused"),
        chat_event("wrGroupRenamed000000000000AAAA", "update", "change_name"),
        (f"<xml><ToUserName>{CORP}</ToUserName><FromUserName>sys</FromUserName><CreateTime>{int(time.time())}</CreateTime>"
         "<MsgType>event</MsgType><Event>change_external_tag</Event><Id>etXXXXXXXXXX</Id><TagType>tag</TagType>"
         "<ChangeType>create</ChangeType></xml>"),
    ]
    for event in events:
        assert (await corp.callback(event))[0] == 200

    async def applied() -> bool:
        async with corp.sessions() as session:
            group = (await session.execute(select(CustomerGroup))).scalars().first()
        found = await member(corp, ALICE)
        return group is not None and group.owner == "lisi" and found is not None and found.name == "王芳"

    await eventually(applied)
    from storage.models import InboxEntry, Interaction

    async with corp.sessions() as session:
        statuses = (await session.execute(select(InboxEntry.status))).scalars().all()
        found = await member_by_identity(session, "wecom", ALICE)
        events_seen = (await session.execute(
            select(Interaction.text).where(Interaction.member_id == found.id, Interaction.kind == "event")  # type: ignore[union-attr]
        )).scalars().all()
        group = (await session.execute(select(CustomerGroup))).scalars().one()
    assert statuses == ["done"] * 4
    assert sorted(events_seen) == ["add_half_external_contact", "transfer_fail"]
    assert group.name == "新名字"
