"""What WeCom tells us of customers and groups, written into our own storage.

Used by the profile fetch after a new contact, by group fetches after chat events, and by
the reconciliation that repairs what lost or reordered callbacks missed.

Corp tags (type 1) staff set on a customer become ours (source "platform"), our tag linked
to the corp tag by its id. When the follow_user list is complete (externalcontact/get)
and tag sync is on, a linked tag none of her staff carry any more was removed in WeCom
and is taken from her too. Personal (type 2) and rule-group (type 3) tags are only added.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.platforms.wecom.updates import PLATFORM
from handlers.contact_events import CHANNEL_TAG_GROUP
from storage.groups import ensure_group, open_stays, record_join, record_leave
from storage.members import member_by_identity, resolve_member
from storage.merge import link_unionid
from storage.models import Member, MemberTag, Tag
from storage.platform_tags import link_tag, marks_in_flight, remove_unlisted_linked_tags, tag_linked_to
from storage.staff import ensure_staff, store_by_code
from storage.tags import apply_tag, ensure_tag

log = logging.getLogger(__name__)
TAG_TYPE_NAMES = {1: "企业标签", 2: "个人标签", 3: "规则组标签"}
CORP_TAG = 1


async def apply_contact(
    session: AsyncSession,
    contact: Mapping[str, Any],
    follow_users: Sequence[Mapping[str, Any]],
    now: datetime,
    *,
    read_at: datetime | None = None,
) -> Member:
    """Fill the member behind `contact` (externalcontact/get or batch/get_by_user shapes).

    `read_at`, when `follow_users` is every follower as read at that time, lets linked
    tags none of them carry any more be removed from her (unless a mark of ours is still
    on its way to WeCom, or landed after the read: the list may not show it yet)."""
    external_id = str(contact["external_userid"])
    member = await resolve_member(session, PLATFORM, external_id, contact.get("name"), now)
    member.name = contact.get("name") or member.name
    member.avatar_url = contact.get("avatar") or member.avatar_url
    if contact.get("gender") in (0, 1, 2):
        member.gender = int(contact["gender"])
    session.add(member)
    if contact.get("unionid"):
        member = await link_unionid(session, member, str(contact["unionid"]))
    assert member.id is not None
    owner = earliest(follow_users)
    if owner is not None:
        if member.owner_staff_id is None:
            staff = await ensure_staff(session, str(owner["userid"]))
            member.owner_staff_id, member.store_id = staff.id, member.store_id or staff.store_id
        member.remark = owner.get("remark") or member.remark
        session.add(member)
    carried: set[int] = set()  # our tags linked to the corp tags she carries
    for follow in follow_users:
        for tag in follow.get("tags", ()):
            if not tag.get("tag_name"):
                continue
            group = tag.get("group_name") or TAG_TYPE_NAMES.get(tag.get("type", 0), "")
            if tag.get("type") == CORP_TAG and tag.get("tag_id"):
                stored = await _linked_tag(session, str(tag["tag_id"]), str(group), str(tag["tag_name"]))
                assert stored.id is not None
                carried.add(stored.id)
            else:
                stored = await ensure_tag(session, str(tag["tag_name"]), str(group))
            await apply_tag(session, member.id, stored, "platform", f"wecom:{follow.get('userid')}", now)
    if read_at is not None and follow_users and not await marks_in_flight(session, member.id, PLATFORM, read_at):
        for gone in await remove_unlisted_linked_tags(session, member.id, carried, now):
            log.info("member %s: corp tag %s (our %s/%s) was removed in WeCom; removed here too",
                     member.id, gone.platform_tag_id, gone.group, gone.name)
    return member


async def _linked_tag(session: AsyncSession, corp_tag_id: str, group: str, name: str) -> Tag:
    """Our tag for a corp tag: the one linked to its id, else the one of its group and
    name (linked now, unless it already follows another corp tag), else a new one."""
    tag = await tag_linked_to(session, corp_tag_id)
    if tag is None:
        tag = await ensure_tag(session, name, group)
        if tag.platform_tag_id is None:
            assert tag.id is not None
            await link_tag(session, tag.id, corp_tag_id)
    return tag


def earliest(follow_users: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The staff member who added her first owns her."""
    return min(follow_users, key=lambda f: f.get("createtime", 0), default=None)


@dataclass(frozen=True, slots=True)
class ChannelJoin:
    """A member who joined a group through a channel's join way (her entry's `state`)."""

    member_id: int
    external_userid: str
    channel: str
    tags: tuple[str, ...]


async def apply_group(
    session: AsyncSession, chat: Mapping[str, Any], now: datetime, channels: Mapping[str, Any] | None = None
) -> list[ChannelJoin]:
    """Bring a group's name, owner and members in line with groupchat/get. A member we
    know who came in through a channel's join way (`state`) gets the channel's tags and,
    if she has none, its store; those are returned (for the corp-tag sync)."""
    group = await ensure_group(session, PLATFORM, str(chat["chat_id"]), now)
    group.name = chat.get("name") or group.name
    group.owner = chat.get("owner") or group.owner
    session.add(group)
    assert group.id is not None
    present = {str(m["userid"]): m for m in chat.get("member_list", ())}
    stays = set(await open_stays(session, group.id))
    joins: list[ChannelJoin] = []
    for user_id, entry in present.items():
        channel = (channels or {}).get(str(entry.get("state") or ""))
        if user_id in stays and channel is None:
            continue
        member = await member_by_identity(session, PLATFORM, user_id)
        if user_id not in stays:
            joined = datetime.fromtimestamp(int(entry.get("join_time") or now.timestamp()), timezone.utc)
            await record_join(session, group, user_id, member.id if member else None, joined,
                              str(entry.get("join_scene", "")) or None)
        if member is not None and member.id is not None and channel is not None:
            joins.append(await _joined_through(session, member, user_id, str(entry["state"]), channel, now))
    for user_id in stays - set(present):
        await record_leave(session, group, user_id, now, None)
    return joins


async def _joined_through(
    session: AsyncSession, member: Member, external_userid: str, code: str, channel: Any, now: datetime
) -> ChannelJoin:
    assert member.id is not None
    added = []
    for name in channel.tags:  # only those she lacks: every read of the group lists the state again
        tag = await ensure_tag(session, name, CHANNEL_TAG_GROUP)
        assert tag.id is not None
        if await session.get(MemberTag, (member.id, tag.id)) is None:
            await apply_tag(session, member.id, tag, "platform", f"channel:{code}", now)
            added.append(name)
    if channel.store and member.store_id is None and (store := await store_by_code(session, channel.store)):
        member.store_id = store.id
        session.add(member)
    return ChannelJoin(member.id, external_userid, code, tuple(added))
