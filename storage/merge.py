"""Merging two member rows that turn out to be one person (same unionid).

A member may first write to the official account and later add a staff member on WeCom;
only the unionid, learnt later, shows they are one. Everything moves to the older row.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    GroupMembership,
    Interaction,
    LayerAssignment,
    LayerMove,
    Member,
    MemberIdentity,
    MemberTag,
    Order,
    OutboxEntry,
    StaffTask,
)

# Rows that simply change hands. Layer assignments are recomputed, so the dropped
# member's are deleted rather than moved (the kept member has her own).
MOVED = (MemberIdentity, Interaction, Order, OutboxEntry, StaffTask, GroupMembership, LayerMove)
PROFILE = ("name", "phone", "gender", "birth_year", "birth_month", "birth_day", "birthday_calendar",
           "birthday_leap_month", "birth_md", "member_since", "store_id", "owner_staff_id", "avatar_url", "remark")


async def merge_members(session: AsyncSession, keep: Member, drop: Member) -> Member:
    """Move everything of `drop` onto `keep`, fill `keep`'s blanks from `drop`, delete `drop`."""
    assert keep.id is not None and drop.id is not None and keep.id != drop.id
    for model in MOVED:
        await session.execute(update(model).where(model.member_id == drop.id).values(member_id=keep.id))  # type: ignore[attr-defined]
    await _merge_tags(session, keep.id, drop.id)
    await session.execute(delete(LayerAssignment).where(LayerAssignment.member_id == drop.id))  # type: ignore[arg-type]
    for name in PROFILE:
        if getattr(keep, name) in (None, "") and getattr(drop, name) not in (None, ""):
            setattr(keep, name, getattr(drop, name))
    if drop.member_since and keep.member_since and drop.member_since < keep.member_since:
        keep.member_since = drop.member_since
    keep.paid_member = keep.paid_member or drop.paid_member
    # An opt-out on either identity stands: she said no to marketing, wherever she said it.
    keep.opted_out_at = keep.opted_out_at or drop.opted_out_at
    unionid, drop.unionid = drop.unionid, None
    await session.flush()
    await session.delete(drop)
    await session.flush()
    keep.unionid = keep.unionid or unionid
    session.add(keep)
    return keep


async def _merge_tags(session: AsyncSession, keep_id: int, drop_id: int) -> None:
    kept = {t.tag_id: t for t in (await session.execute(select(MemberTag).where(MemberTag.member_id == keep_id))).scalars()}
    for tag in (await session.execute(select(MemberTag).where(MemberTag.member_id == drop_id))).scalars().all():
        mine = kept.get(tag.tag_id)
        if mine is None:
            session.add(MemberTag(member_id=keep_id, tag_id=tag.tag_id, source=tag.source, source_ref=tag.source_ref,
                                  first_seen=tag.first_seen, last_seen=tag.last_seen, hit_count=tag.hit_count))
        else:
            mine.first_seen = min(mine.first_seen, tag.first_seen)
            mine.last_seen = max(mine.last_seen, tag.last_seen)
            mine.hit_count += tag.hit_count
            session.add(mine)
        await session.delete(tag)
    await session.flush()


async def link_unionid(session: AsyncSession, member: Member, unionid: str) -> Member:
    """Record the member's unionid; if another member has it, the two become one."""
    if member.unionid == unionid:
        return member
    other = (await session.execute(select(Member).where(Member.unionid == unionid))).scalars().first()
    if other is None or other.id == member.id:
        member.unionid = unionid
        session.add(member)
        return member
    assert other.id is not None and member.id is not None
    keep, drop = (other, member) if other.id < member.id else (member, other)
    return await merge_members(session, keep, drop)
