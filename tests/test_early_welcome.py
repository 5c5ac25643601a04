"""Welcomes go ahead of everything else, in batches (handlers/early_welcome.py): each
waiting welcome is queued once, for a member created once, naming the store her handling
will give her; the rest of the row's handling follows and queues nothing twice."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.settings.handlers import handler_config
from bot.settings.model import Settings, load_settings
from bot.settings.templates import renderer_for
from handlers.early_welcome import send_welcomes_early
from handlers.updates import EventUpdate, to_payload
from storage.engine import SessionFactory
from storage.inbox import InboxWriter, NewInboxEntry, claim_entries
from storage.members import resolve_member
from storage.models import InboxEntry, Member, MemberIdentity, OutboxEntry, Staff, Store, utcnow
from tests.conftest import write_config
from tests.fakes.wecom_cloud import FakeWeComCloud
from tests.wecom_harness import Corp, contact_event, wecom_config

def new_contact(external: str, code: str, state: str = "", staff: str = "zhangsan") -> NewInboxEntry:
    detail = {"UserID": staff, "WelcomeCode": code} | ({"State": state} if state else {})
    update = EventUpdate(f"wecom:add:{external}", "wecom", external, "add_external_contact", utcnow(), detail)
    return NewInboxEntry(update.key, "wecom", external, to_payload(update), urgent=True)


async def store(sessions: SessionFactory, entries: list[NewInboxEntry]) -> None:
    writer = InboxWriter(sessions.kw["bind"])
    writer.start()
    for entry in entries:
        await writer.add(entry)
    await writer.close()


def brand(tmp_path, db_url: str, extra: str = "") -> Settings:  # noqa: ANN001
    # Its channel poster-jingan names the store jingan. No WeCom calls: the address is never dialled.
    return load_settings(write_config(tmp_path, db_url, wecom_config("http://127.0.0.1:9") + extra))


async def early(sessions: SessionFactory, settings: Settings, now: datetime | None = None) -> int:
    return await send_welcomes_early(sessions, handler_config(settings), renderer_for(settings), now or utcnow(), batch=64)


async def welcomes(sessions: SessionFactory) -> list[OutboxEntry]:
    async with sessions() as session:
        return list((await session.execute(select(OutboxEntry).where(OutboxEntry.route == "welcome"))).scalars())


async def test_a_crowd_of_new_contacts_is_welcomed_in_batches(sessions: SessionFactory, tmp_path, db_url: str) -> None:  # noqa: ANN001
    settings = brand(tmp_path, db_url)
    async with sessions() as session, session.begin():
        session.add(Store(code="jingan", name="静安店"))
    await store(sessions, [new_contact(f"wm{n:04d}", f"code{n}", "poster-jingan" if n % 2 else "") for n in range(150)])
    assert await early(sessions, settings) == 150  # three batches of 64, 64 and 22
    queued = await welcomes(sessions)
    assert sorted(row.recipient for row in queued) == [f"wm{n:04d}" for n in range(150)]
    assert all(row.member_id is not None for row in queued)
    by_recipient = {row.recipient: row for row in queued}
    assert "静安店" in by_recipient["wm0001"].body and "静安店" not in by_recipient["wm0000"].body
    assert '"welcome_code": "code7"' in by_recipient["wm0007"].meta
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Member)) == 150
        assert await session.scalar(select(func.count()).select_from(MemberIdentity)) == 150
        rows = (await session.execute(select(InboxEntry.status, InboxEntry.urgent))).all()
    # Back in line for the rest of their handling, no longer ahead of it.
    assert set(rows) == {("pending", False)}
    assert await early(sessions, settings) == 0


async def test_a_returning_member_keeps_her_id_and_her_name(sessions: SessionFactory, tmp_path, db_url: str) -> None:  # noqa: ANN001
    settings = brand(tmp_path, db_url)
    async with sessions() as session, session.begin():
        member = await resolve_member(session, "wecom", "wmBack", "王芳", utcnow())
    await store(sessions, [new_contact("wmBack", "codeBack")])
    assert await early(sessions, settings) == 1
    (row,) = await welcomes(sessions)
    assert row.member_id == member.id and "王芳" in row.body


async def test_a_member_whose_rows_are_in_hand_is_left_to_her_handler(sessions: SessionFactory, tmp_path, db_url: str) -> None:  # noqa: ANN001
    settings = brand(tmp_path, db_url)
    await store(sessions, [NewInboxEntry("msg", "wecom", "wmBusy", "{}")])
    now = utcnow()
    async with sessions() as session, session.begin():
        assert len(await claim_entries(session, "other", now, timedelta(seconds=30), 5)) == 1
    await store(sessions, [new_contact("wmBusy", "codeBusy"), new_contact("wmFree", "codeFree")])
    assert await early(sessions, settings, now) == 1
    assert [row.recipient for row in await welcomes(sessions)] == ["wmFree"]
    async with sessions() as session:
        urgent = (await session.execute(select(InboxEntry.sender).where(InboxEntry.urgent))).scalars().all()
    assert urgent == ["wmBusy"]  # still first in line once the other claim ends


async def test_a_welcome_that_cannot_render_goes_back_to_its_row_and_the_others_go(
    sessions: SessionFactory, tmp_path, db_url: str  # noqa: ANN001
) -> None:
    # The channel's own welcome, written in the console, fails for a member with no name yet.
    texts = '[templates.texts]\n"persona/welcome/broken.txt.j2" = "{{ member.name.upper() }} 你好"\n'
    settings = brand(tmp_path, db_url, "[platforms.wecom.channels.broken]\n" + texts)
    await store(sessions, [new_contact("wmA", "a"), new_contact("wmBroken", "b", "broken"), new_contact("wmC", "c")])
    assert await early(sessions, settings) == 3
    assert sorted(row.recipient for row in await welcomes(sessions)) == ["wmA", "wmC"]
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(InboxEntry).where(InboxEntry.urgent)) == 0


async def test_end_to_end_each_welcome_is_sent_once_and_the_rest_follows(corp: Corp, cloud: FakeWeComCloud) -> None:
    externals = [f"wmCrowd{n:03d}" for n in range(40)]
    for external in externals:
        cloud.add_contact("zhangsan", external, f"会员{external[-3:]}")
        code = cloud.issue_welcome_code(external, "zhangsan")
        assert (await corp.callback(contact_event("add_external_contact", external, WelcomeCode=code)))[0] == 200
    from tests.conftest import eventually

    async def settled() -> bool:
        async with corp.sessions() as session:
            pending = await session.scalar(select(func.count()).select_from(InboxEntry).where(InboxEntry.status != "done"))
            named = await session.scalar(select(func.count()).select_from(Member).where(Member.name.is_not(None)))  # type: ignore[union-attr]
        return pending == 0 and named == 40 and len(cloud.deliveries("/cgi-bin/externalcontact/send_welcome_msg")) == 40

    await eventually(settled, timeout=30)
    assert sorted(d.to for d in cloud.deliveries("/cgi-bin/externalcontact/send_welcome_msg")) == externals
    async with corp.sessions() as session:
        owners = set((await session.execute(select(Staff.userid).join(Member, Member.owner_staff_id == Staff.id))).scalars())
        assert owners == {"zhangsan"}  # the row's own handling followed: owner, profile
        assert await session.scalar(select(func.count()).select_from(Member)) == 40
        assert await session.scalar(select(func.count()).select_from(OutboxEntry).where(OutboxEntry.route == "welcome")) == 40
