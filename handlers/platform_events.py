"""Updates about the platform rather than one member: customer groups and corp tags
changing, and triggers to pull messages that a platform does not push (WeChat Customer
Service)."""

from __future__ import annotations

from collections.abc import Sequence

from handlers.actions import Action, FetchGroup, FetchTags, PullMessages
from handlers.context import PlatformContext
from handlers.tag_engine import sync_actions, tag_event
from handlers.updates import EventUpdate, Update
from storage.groups import ensure_group, record_join, record_leave
from storage.interactions import record_interaction
from storage.members import member_by_identity

QR_CODE = "3"  # JoinScene: 1 invited directly, 2 by a link, 3 by scanning a QR code


async def handle(update: Update, ctx: PlatformContext) -> Sequence[Action]:
    if not isinstance(update, EventUpdate):
        return ()
    match update.event:
        case "kf_msg_or_event":
            return (PullMessages(update.platform, f"kf:{update.sender}", update.detail.get("Token", "")),)
        case "chat_create":
            await ensure_group(ctx.session, update.platform, update.sender, update.occurred_at)
            return (FetchGroup(update.platform, update.sender),)
        case "chat_dismiss":
            group = await ensure_group(ctx.session, update.platform, update.sender, update.occurred_at)
            group.dismissed_at = update.occurred_at
            ctx.session.add(group)
            return ()
        case "chat_update":
            return await _group_changed(update, ctx)
        case "tag_create" | "tag_update" | "tag_delete" | "tag_shuffle":
            # The event names only an id: the platform's list says what changed.
            return (FetchTags(update.platform),)
    return ()


async def _group_changed(update: EventUpdate, ctx: PlatformContext) -> Sequence[Action]:
    group = await ensure_group(ctx.session, update.platform, update.sender, update.occurred_at)
    change = update.detail.get("UpdateDetail", "")
    people = [p for p in update.detail.get("MemChangeList", "").split(",") if p]
    if change not in ("add_member", "del_member") or not people:
        # Name and owner changes carry no new values, and older payloads no member
        # list: read the group itself.
        return (FetchGroup(update.platform, update.sender),)
    joined = change == "add_member"
    actions: list[Action] = []
    for person in people:
        member = await member_by_identity(ctx.session, update.platform, person)
        if joined:
            await record_join(ctx.session, group, person, member.id if member else None,
                              update.occurred_at, update.detail.get("JoinScene"))
        else:
            await record_leave(ctx.session, group, person, update.occurred_at, update.detail.get("QuitScene"))
        if member is not None and member.id is not None:
            await record_interaction(
                ctx.session, member.id, "event", update.platform, update.occurred_at,
                f"{'joined' if joined else 'left'}_group:{group.name or group.chat_id}",
                ref=f"inbox:{ctx.inbox_id}:{person}"[:64],
            )
            tags = await tag_event(ctx.session, ctx.config, member.id, "joined_group" if joined else "left_group",
                                   ctx.now, group.name or group.chat_id)
            actions.extend(sync_actions(ctx.config, update.platform, person, tags))
    if joined and update.detail.get("JoinScene") == QR_CODE:
        # Perhaps through a channel's join way: only the group's member list carries the
        # way's state (the callback does not), so read it.
        actions.append(FetchGroup(update.platform, update.sender))
    return actions
