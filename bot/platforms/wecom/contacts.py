"""What WeCom tells us of customers and groups, written into our own storage.

Used by the profile fetch after a new contact, by group fetches after chat events, and by
the reconciliation that repairs what lost or reordered callbacks missed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.platforms.wecom.updates import PLATFORM
from storage.groups import ensure_group, open_stays, record_join, record_leave
from storage.members import member_by_identity, resolve_member
from storage.merge import link_unionid
from storage.models import Member
from storage.staff import ensure_staff
from storage.tags import apply_tag, ensure_tag

TAG_TYPE_NAMES = {1: "企业标签", 2: "个人标签", 3: "规则组标签"}


async def apply_contact(
    session: AsyncSession,
    contact: Mapping[str, Any],
    follow_users: Sequence[Mapping[str, Any]],
    now: datetime,
) -> Member:
    """Fill the member behind `contact` (externalcontact/get or batch/get_by_user shapes)."""
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
    owner = _earliest(follow_users)
    if owner is not None:
        if member.owner_staff_id is None:
            staff = await ensure_staff(session, str(owner["userid"]))
            member.owner_staff_id, member.store_id = staff.id, member.store_id or staff.store_id
        member.remark = owner.get("remark") or member.remark
        session.add(member)
    for follow in follow_users:
        for tag in follow.get("tags", ()):
            if not tag.get("tag_name"):
                continue
            group = tag.get("group_name") or TAG_TYPE_NAMES.get(tag.get("type", 0), "")
            stored = await ensure_tag(session, str(tag["tag_name"]), str(group))
            await apply_tag(session, member.id, stored, "platform", f"wecom:{follow.get('userid')}", now)
    return member


def _earliest(follow_users: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The staff member who added her first owns her."""
    return min(follow_users, key=lambda f: f.get("createtime", 0), default=None)


async def apply_group(session: AsyncSession, chat: Mapping[str, Any], now: datetime) -> None:
    """Bring a group's name, owner and members in line with groupchat/get."""
    group = await ensure_group(session, PLATFORM, str(chat["chat_id"]), now)
    group.name = chat.get("name") or group.name
    group.owner = chat.get("owner") or group.owner
    session.add(group)
    assert group.id is not None
    present = {str(m["userid"]): m for m in chat.get("member_list", ())}
    stays = set(await open_stays(session, group.id))
    for user_id, entry in present.items():
        if user_id not in stays:
            joined = datetime.fromtimestamp(int(entry.get("join_time") or now.timestamp()), timezone.utc)
            member = await member_by_identity(session, PLATFORM, user_id)
            await record_join(session, group, user_id, member.id if member else None, joined,
                              str(entry.get("join_scene", "")) or None)
    for user_id in stays - set(present):
        await record_leave(session, group, user_id, now, None)
