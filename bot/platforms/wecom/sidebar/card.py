"""What the sidebar shows, as JSON: the member in a single chat (who she is, her layers
and last move, her lifetime value, tags and why, care days, six-moments plan, open tasks
with suggested words, last messages) and the members we know in a customer group, each within the
store rules of the staff member looking (`Viewer`): anyone else is "not found", so the
card never tells that a member exists."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.shared.access import Viewer
from bot.shared.member_value import ValueFound, member_value
from handlers.member_card import care_days, suggested_words
from scheduler.six_moments import LABELS as MOMENT_LABELS
from storage import member_profile as profile
from storage.care import plan_of
from storage.layers import layers_of
from storage.members import mask_phones, member_by_identity, store_and_owner
from storage.models import CustomerGroup, GroupMembership, LayerAssignment, Member
from storage.tags import tags_of

PLATFORM = "wecom"
SOURCES = {"rule": "规则", "staff": "店员", "platform": "企业微信", "import": "导入"}
SPEAKERS = {"message_in": "客户说", "message_out": "自动回复", "staff_out": "店员回复", "event": "事件"}
TASK_STATUS = {"open": "待办", "done": "已完成", "skipped": "已跳过", None: "未到期"}
GROUP_SHOWN = 200


class Labels:
    """Operators' names for schemes and layers (falling back to the names themselves)."""

    def __init__(self, schemes: Mapping[str, str], layers: Mapping[tuple[str, str], str]):
        self._schemes, self._layers = schemes, layers

    def layers(self, assigned: Mapping[str, str]) -> list[dict[str, str]]:
        return [{"scheme": self._schemes.get(scheme, scheme), "layer": self._layers.get((scheme, layer), layer)}
                for scheme, layer in sorted(assigned.items())]

    def layer(self, scheme: str, layer: str | None) -> str | None:
        return self._layers.get((scheme, layer), layer) if layer else None

    def scheme(self, scheme: str) -> str:
        return self._schemes.get(scheme, scheme)


async def member_in_chat(session: AsyncSession, viewer: Viewer, external_userid: str) -> Member | None:
    member = await member_by_identity(session, PLATFORM, external_userid)
    return member if member is not None and viewer.may_read_member(member) else None


def _day(moment: datetime | date | None, zone: ZoneInfo) -> str | None:
    if moment is None:
        return None
    return (moment.astimezone(zone) if isinstance(moment, datetime) else moment).strftime("%Y-%m-%d")


def _value(found: ValueFound) -> dict[str, Any]:
    """Her lifetime value as staff read it: figures in words, what they mean, or why none."""
    value = found.value
    if value is None:
        return {"none": found.missing}
    return {"p_alive": f"{value.p_alive:.0%}", "orders": f"{value.orders:.1f}", "spend": f"¥{value.spend_yuan:,.2f}",
            "days": value.horizon_days, "as_of": value.as_of.isoformat(), "explained": value.explanation()}


async def contact_card(
    session: AsyncSession, viewer: Viewer, member: Member, labels: Labels, zone: ZoneInfo, today: date, messages: int,
    horizon_days: int = 90, rules: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """`rules`: each tag rule's id → what it matches in words, so a tag's why names no id."""
    assert member.id is not None
    store, owner = await store_and_owner(session, member)
    moves = await profile.moves_of(session, member.id, limit=1)
    tasks = []
    for task, assignee in await profile.open_tasks_about(session, member.id, limit=20):
        tasks.append({
            "id": task.id, "title": task.title, "due": task.due_date.isoformat(), "overdue": task.due_date < today,
            "assignee": assignee, "words": suggested_words(task.body), "mine": await viewer.may_act_on_task(session, task),
        })
    return {
        "member": {
            "id": member.id, "name": member.name or "未命名会员", "remark": mask_phones(member.remark, member.phone) or None,
            "store": store.name if store else None, "owner": owner.name if owner else None,
            "opted_out": member.opted_out_at is not None, "left": member.left_at is not None,
        },
        "layers": labels.layers(await layers_of(session, member.id)),
        "last_move": next(({"scheme": labels.scheme(m.scheme), "from": labels.layer(m.scheme, m.from_layer),
                            "to": labels.layer(m.scheme, m.to_layer), "at": _day(m.moved_at, zone)} for m in moves), None),
        "tags": [{"name": t.name, "group": t.group, "source": SOURCES.get(t.source, t.source),
                  "ref": _why(t.source, t.source_ref, rules or {}), "hits": t.hit_count, "since": _day(t.first_seen, zone)}
                 for t in await tags_of(session, member.id)],
        "care": [{"name": name, "date": when.isoformat(), "days": days} for name, when, days in care_days(member, today)],
        "plan": [{"label": touch.label or MOMENT_LABELS.get(touch.kind, touch.kind), "due": touch.due_date.isoformat(),
                  "status": TASK_STATUS.get(status, status)} for touch, status in await plan_of(session, member.id)],
        "tasks": tasks,
        "value": _value(await member_value(session, member.id, horizon_days)),
        "messages": [{"at": e.at.astimezone(zone).strftime("%m-%d %H:%M"), "who": SPEAKERS.get(e.kind, e.kind),
                      "text": mask_phones(e.text, member.phone)[:200]}
                     for e in await profile.timeline(session, member.id, messages)] if messages else [],
    }


def _why(source: str, ref: str | None, rules: Mapping[str, str]) -> str | None:
    if source == "rule" and ref in rules:
        return rules[ref]
    return ref[len("channel:"):] if ref and ref.startswith("channel:") else ref


async def group_card(
    session: AsyncSession, viewer: Viewer, chat_id: str, labels: Labels
) -> dict[str, Any] | None:
    """The group's members we know and this viewer may see, with their layers; the rest
    are only counted."""
    group = (await session.execute(select(CustomerGroup).where(
        CustomerGroup.platform == PLATFORM, CustomerGroup.chat_id == chat_id))).scalars().first()
    if group is None:
        return None
    stays = select(GroupMembership.member_id, GroupMembership.user_id).where(
        GroupMembership.group_id == group.id, GroupMembership.left_at.is_(None))  # type: ignore[union-attr]
    present = (await session.execute(stays)).all()
    ids = [member_id for member_id, _ in present if member_id is not None]
    visible = list((await session.execute(
        select(Member).where(Member.id.in_(ids), viewer.member_scope())  # type: ignore[union-attr]
        .order_by(Member.name, Member.id).limit(GROUP_SHOWN)
    )).scalars().all()) if ids else []
    assigned: dict[int, dict[str, str]] = {}
    if visible:
        rows = await session.execute(select(LayerAssignment.member_id, LayerAssignment.scheme, LayerAssignment.layer)
                                     .where(LayerAssignment.member_id.in_([m.id for m in visible])))  # type: ignore[attr-defined]
        for member_id, scheme, layer in rows.all():
            assigned.setdefault(member_id, {})[scheme] = layer
    return {
        "group": {"name": group.name or "客户群", "people": len(present)},
        "members": [{"id": m.id, "name": m.name or "未命名会员", "layers": labels.layers(assigned.get(m.id or 0, {}))}
                    for m in visible],
        "others": len(present) - len(visible),
    }
