"""What a person changes on a member by hand, from the console or the WeCom sidebar:
tags (source "staff", an exclusive group respected, a rule's tag claimed as staff's) and
the outbox rows that keep WeCom's corp tags in step. One path for both, so a tag added
in the chat sidebar is the same fact as one added in the console.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.settings.layers import SchemeSettings
from bot.shared.access import Viewer
from bot.shared.keys import DELIVERY
from handlers.config import HandlerConfig
from handlers.tag_engine import TagChange, clear_exclusive_group, sync_actions
from storage import member_profile as profile
from storage.members import identities_of
from storage.models import MemberIdentity, Staff, Tag
from storage.outbox import NewOutboxMessage, enqueue
from storage.platform_tags import MARK_ROUTE, tag_named
from storage.tags import apply_tag, ensure_tag, mark_members_changed, remove_member_tags

AMBIGUOUS = "几个分组都有这个标签，请填写分组"
NAME_RULE = "标签名必填，标签名和分组最多 64 个字"


def scheme_and_layer_labels(
    schemes: Sequence[SchemeSettings],
) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """Operators' names for schemes and for (scheme, layer)."""
    names = {s.name: s.label or s.name for s in schemes}
    layers = {(s.name, name): label for s in schemes for name, label in s.layer_labels().items()}
    return names, layers


def mark_rows(
    config: HandlerConfig, member_id: int, identities: Sequence[MemberIdentity], change: TagChange
) -> list[NewOutboxMessage]:
    """The outbox rows that keep a platform's tags in step with this change, as the
    dispatcher writes them for the handlers' MarkTags (route mark_tag, a request)."""
    rows = []
    for identity in identities:
        for action in sync_actions(config, identity.platform, identity.external_id, change):
            meta = json.dumps({"add": action.add, "remove": action.remove}, ensure_ascii=False)
            rows.append(NewOutboxMessage(
                f"tags:console:{member_id}:{uuid.uuid4().hex}", action.platform, action.external_id, "request", "",
                member_id=member_id, route=MARK_ROUTE, meta=meta,
            ))
    return rows


def wake_delivery(request: web.Request) -> None:
    """Rows were queued: have this process's delivery loop look now, not at its next poll."""
    delivery = request.config_dict.get(DELIVERY)
    if delivery is not None:
        delivery.wake()


async def queue_sync(session: AsyncSession, config: HandlerConfig, member_id: int, change: TagChange, now: datetime) -> bool:
    """Queue the corp-tag sync of `change`; whether there was anything to sync."""
    rows = mark_rows(config, member_id, await identities_of(session, member_id), change) if change else []
    await enqueue(session, rows, now)
    return bool(rows)


async def editor_ref(session: AsyncSession, viewer: Viewer) -> str:
    """Who set a tag, as `MemberTag.source_ref` keeps it: a staff userid, or the operator."""
    staff = await session.get(Staff, viewer.staff_id) if viewer.staff_id is not None else None
    return staff.userid if staff is not None else f"operator:{viewer.login}"


def configured_group(config: HandlerConfig, name: str) -> str | None:
    """The group the tag rules give a tag of this name in, when they agree on one: a hand
    tag typed without its group still lands in it (so an exclusive grade replaces the old)."""
    groups = {rule.group for rule in config.tag_rules if rule.tag == name}
    return groups.pop() if len(groups) == 1 else None


async def _tag_to_add(session: AsyncSession, config: HandlerConfig, name: str, group: str) -> Tag | str:
    """The tag named (an existing one when the name alone is unambiguous), or a problem."""
    if not group:
        same_name = await profile.tags_named(session, name)
        if len(same_name) > 1:
            return AMBIGUOUS
        if same_name:
            return same_name[0]
        group = configured_group(config, name) or ""
    return await ensure_tag(session, name, group)


async def add_tag_by_hand(
    session: AsyncSession, config: HandlerConfig, viewer: Viewer, member_id: int, name: str, group: str,
    now: datetime,
) -> tuple[str | None, bool]:
    """Give her the tag as `viewer`: (a problem to show, or None; whether a sync was queued)."""
    name, group = name.strip(), group.strip()
    if not name or len(name) > 64 or len(group) > 64:
        return NAME_RULE, False
    tag = await _tag_to_add(session, config, name, group)
    if isinstance(tag, str):
        return tag, False
    assert tag.id is not None
    change = TagChange()
    change.removed.extend(await clear_exclusive_group(session, config, member_id, tag, now))
    ref = await editor_ref(session, viewer)
    if await apply_tag(session, member_id, tag, "staff", ref, now):
        change.added.append((tag.group, tag.name))
    else:
        await profile.claim_for_staff(session, member_id, tag.id, ref)  # a person confirmed it
    await mark_members_changed(session, member_id, now)
    return None, await queue_sync(session, config, member_id, change, now)


async def remove_tag_by_hand(
    session: AsyncSession, config: HandlerConfig, member_id: int, name: str, group: str, now: datetime
) -> bool:
    """Take the tag off her; whether a sync was queued."""
    tag = await tag_named(session, group.strip(), name.strip())
    if tag is None or tag.id is None or await remove_member_tags(session, member_id, [tag.id], now) == 0:
        return False
    return await queue_sync(session, config, member_id, TagChange(removed=[(tag.group, tag.name)]), now)
