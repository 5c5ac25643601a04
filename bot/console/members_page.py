"""Members: search (name, phone tail, tag) and one member's page — profile, opt-out, tags
and why, layers and their history, timeline, orders, six moments, care dates, open tasks —
with the hand edits: tags (staff and operators) and opt-out (operators).

A staff login reads only the members it may (`Viewer.member_scope`); any other member is
"not found", so her existence is not disclosed. Edits take the same paths as the
handlers: tags through `storage.tags` with source "staff", opt-out as the opt-out handler
records it, and a `mark_tag` outbox row wherever WeCom's tags follow ours.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.console.access import Viewer
from bot.console.keys import VIEWER
from bot.console.render import render
from bot.settings.model import Settings
from bot.shared.keys import DELIVERY, HANDLERS, SESSIONS, SETTINGS
from handlers.care_dates import next_anniversary, next_birthday
from handlers.config import HandlerConfig
from handlers.tag_engine import TagChange, clear_exclusive_group, sync_actions, tag_event
from scheduler.six_moments import LABELS as MOMENT_LABELS
from storage import member_profile as profile
from storage.care import plan_of
from storage.members import identities_of, masked_phone, store_and_owner
from storage.models import Member, MemberIdentity, Staff, Tag, utcnow
from storage.outbox import NewOutboxMessage, enqueue
from storage.platform_tags import MARK_ROUTE, tag_named
from storage.tags import (
    apply_tag,
    ensure_tag,
    interests_of,
    mark_members_changed,
    remove_member_tags,
    tags_of,
)

log = logging.getLogger(__name__)
PER_PAGE, MAX_PAGE = 50, 10_000
TIMELINE, ORDERS = 50, 20
SOURCES = {"rule": "规则", "staff": "店员", "platform": "平台", "import": "导入"}
SPEAKERS = {"message_in": "她说", "message_out": "自动回复", "staff_out": "店员回复", "event": "事件"}
METRIC_LABELS = {
    "frequency": "窗口内订单数", "monetary_cents": "窗口内消费", "r_score": "近度分 R", "f_score": "频度分 F",
    "m_score": "金额分 M", "paid_member": "付费会员", "referrals": "推荐人数", "last_order_at": "最近下单",
}
NOTICES = {
    "tag_added": "标签已加上。", "tag_removed": "标签已去掉。",
    "opted_out": "已记下她的退订：营销消息不再发给她。", "opted_in": "已取消退订：她又会收到营销消息。",
}
MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def add_routes(console: web.Application) -> None:
    console.router.add_get("/members", member_list)
    console.router.add_get("/members/{id:\\d+}", member_page)
    console.router.add_post("/members/{id:\\d+}/tags", add_tag)
    console.router.add_post("/members/{id:\\d+}/tags/remove", remove_tag)
    console.router.add_post("/members/{id:\\d+}/opt-out", change_opt_out)


# ── Pure helpers ───────────────────────────────────────────────────────────────────────


def read_query(q: str) -> profile.MemberFilter:
    """Digits (spaces and dashes allowed) are a phone tail; anything else part of a name."""
    q = q.strip()[:64]
    digits = re.sub(r"[\s-]", "", q)
    if digits.isdigit():
        return profile.MemberFilter(phone_tail=digits)
    return profile.MemberFilter(name=q)


def page_number(raw: str | None) -> int:
    return min(int(raw), MAX_PAGE) if raw and raw.isdigit() and int(raw) > 0 else 1


def page_link(q: str, tag: str, page: int) -> str:
    query = {k: v for k, v in (("q", q), ("tag", tag), ("page", str(page) if page > 1 else "")) if v}
    return "/admin/members" + (f"?{urlencode(query)}" if query else "")


def mask_phones(text: str | None, phone: str | None = None) -> str:
    """Free text (messages, remarks) with mobile numbers, and her own phone, masked."""
    if not text:
        return ""
    if phone and len(phone.strip()) >= 7:
        text = text.replace(phone.strip(), masked_phone(phone) or "")
    return MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)


def yuan(cents: int) -> str:
    return f"¥{Decimal(cents).scaleb(-2):,.2f}"


@dataclass(frozen=True, slots=True)
class Metric:
    label: str  # a phrase to translate, with `fields`
    fields: dict[str, Any]
    value: str
    words: bool = False  # the value is a phrase to translate too (是 / 否)


def readable_metrics(metrics: dict[str, Any], zone: ZoneInfo) -> list[Metric]:
    """An assignment's stored metrics as people read them: labelled, yuan, local dates."""
    shown: list[Metric] = []
    for key, value in metrics.items():
        window = re.fullmatch(r"interactions_(\d+)d", key)
        label, fields = ("近 {n} 天互动", {"n": int(window.group(1))}) if window else (METRIC_LABELS.get(key, key), {})
        if value is None:
            shown.append(Metric(label, fields, "—"))
        elif isinstance(value, bool) or key == "paid_member":
            shown.append(Metric(label, fields, "是" if value else "否", words=True))
        elif key == "monetary_cents":
            shown.append(Metric(label, fields, yuan(int(value))))
        elif key == "last_order_at":
            shown.append(Metric(label, fields, _local_day(str(value), zone)))
        else:
            shown.append(Metric(label, fields, str(value)))
    return shown


def _local_day(stamp: str, zone: ZoneInfo) -> str:
    try:
        moment = datetime.fromisoformat(stamp.replace(" ", "T"))
    except ValueError:
        return stamp
    return (moment.astimezone(zone) if moment.tzinfo else moment).strftime("%Y-%m-%d")


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


# ── Pages ──────────────────────────────────────────────────────────────────────────────


def _labels(settings: Settings) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """Operators' names for schemes and (scheme, layer)."""
    schemes = {s.name: s.label or s.name for s in settings.layers.schemes}
    layers = {(s.name, name): label for s in settings.layers.schemes for name, label in s.layer_labels().items()}
    return schemes, layers


async def member_list(request: web.Request) -> web.Response:
    viewer: Viewer = request[VIEWER]
    q, tag = request.query.get("q", "").strip()[:64], request.query.get("tag", "").strip()[:64]
    page = page_number(request.query.get("page"))
    wanted = read_query(q)
    async with request.config_dict[SESSIONS]() as session:
        if tag:
            wanted = profile.MemberFilter(wanted.name, wanted.phone_tail, await profile.tag_ids_for(session, tag))
        found = await profile.search_page(session, viewer.member_scope(), wanted, page, PER_PAGE)
        tags = await profile.known_tags(session)
    settings = request.config_dict[SETTINGS]
    schemes, layers = _labels(settings)
    return render(
        request, "members.html", rows=found.rows, q=q, tag=tag, tags=tags, page=page,
        previous=page_link(q, tag, page - 1) if page > 1 else None,
        next=page_link(q, tag, page + 1) if found.has_next else None,
        by_phone=bool(wanted.phone_tail), schemes=schemes, layers=layers, local=_localiser(settings.zone),
        per_page=PER_PAGE,
    )


def _localiser(zone: ZoneInfo):  # noqa: ANN202
    return lambda moment: moment.astimezone(zone) if moment is not None else None


async def _member_for(request: web.Request, session: AsyncSession) -> Member:
    """The member of the path, if this viewer may read her; "not found" otherwise."""
    viewer: Viewer = request[VIEWER]
    member = await session.get(Member, int(request.match_info["id"]))
    if member is None or member.id is None or not viewer.may_read_member(member):
        raise web.HTTPNotFound(text="no such member / 没有这个会员")
    return member


async def member_page(request: web.Request, problem: str | None = None, status: int = 200) -> web.Response:
    settings = request.config_dict[SETTINGS]
    zone = settings.zone
    today = datetime.now(zone).date()
    before = request.query.get("before", "")
    async with request.config_dict[SESSIONS]() as session:
        member = await _member_for(request, session)
        assert member.id is not None
        store, owner = await store_and_owner(session, member)
        record: dict[str, Any] = {
            "identities": await identities_of(session, member.id),
            "tags": await tags_of(session, member.id),
            "interests": sorted((await interests_of(session, member.id)).items(), key=lambda kv: (-kv[1], kv[0])),
            "assignments": [(a, readable_metrics(profile.metrics_of(a), zone))
                            for a in await profile.assignments_of(session, member.id)],
            "moves": await profile.moves_of(session, member.id),
            "timeline": await profile.timeline(session, member.id, TIMELINE + 1, int(before) if before.isdigit() else None),
            "orders": await profile.orders_of(session, member.id, ORDERS),
            "plan": await plan_of(session, member.id),
            "tasks": await profile.open_tasks_about(session, member.id),
            "known_tags": await profile.known_tags(session),
        }
    schemes, layers = _labels(settings)
    events = record.pop("timeline")
    return render(
        request, "member.html", http_status=status, member=member, store=store, owner=owner, **record,
        phone=masked_phone(member.phone), remark=mask_phones(member.remark, member.phone),
        events=[(e, mask_phones(e.text, member.phone)) for e in events[:TIMELINE]],
        more=f"/admin/members/{member.id}?before={events[TIMELINE - 1].id}#timeline" if len(events) > TIMELINE else None,
        paged=before.isdigit(), groups=sorted({t.group for t in record["known_tags"] if t.group}),
        care=_care(member, today), today=today, schemes=schemes, layers=layers, local=_localiser(zone),
        sources=SOURCES, speakers=SPEAKERS, moment_labels=MOMENT_LABELS, yuan=yuan, problem=problem,
        notice=NOTICES.get(request.query.get("done", "")),
    )


def _care(member: Member, today: date) -> list[tuple[str, date, int]]:
    """Her next birthday and membership anniversary, soonest first, with days to go."""
    moments = [
        ("生日", next_birthday(member.birth_month, member.birth_day, member.birthday_calendar,
                              member.birthday_leap_month, today)),
        ("入会周年", next_anniversary(member.member_since, today)),
    ]
    return sorted(((name, when, (when - today).days) for name, when in moments if when is not None),
                  key=lambda m: m[1])


# ── Edits ──────────────────────────────────────────────────────────────────────────────


async def _staff_ref(session: AsyncSession, viewer: Viewer) -> str:
    """Who set a tag, as `MemberTag.source_ref` keeps it: a staff userid, or the operator."""
    staff = await session.get(Staff, viewer.staff_id) if viewer.staff_id is not None else None
    return staff.userid if staff is not None else f"operator:{viewer.login}"


async def _queue_sync(
    session: AsyncSession, config: HandlerConfig, member_id: int, change: TagChange, now: datetime
) -> bool:
    rows = mark_rows(config, member_id, await identities_of(session, member_id), change) if change else []
    await enqueue(session, rows, now)
    return bool(rows)


def _wake_delivery(request: web.Request) -> None:
    delivery = request.config_dict.get(DELIVERY)
    if delivery is not None:
        delivery.wake()


async def _tag_to_add(session: AsyncSession, name: str, group: str, group_given: bool) -> Tag | str:
    """The tag the form names (an existing one when the name alone is unambiguous), or a
    problem to show."""
    if not group_given:
        same_name = await profile.tags_named(session, name)
        if len(same_name) > 1:
            return "几个分组都有这个标签，请填写分组"
        if same_name:
            return same_name[0]
    return await ensure_tag(session, name, group)


async def add_tag(request: web.Request) -> web.Response:
    viewer: Viewer = request[VIEWER]
    form = await request.post()
    name, group = str(form.get("name", "")).strip(), str(form.get("group", "")).strip()
    if not name or len(name) > 64 or len(group) > 64:
        return await member_page(request, problem="标签名必填，标签名和分组最多 64 个字", status=400)
    config, now = request.config_dict[HANDLERS], utcnow()
    async with request.config_dict[SESSIONS]() as session, session.begin():
        member = await _member_for(request, session)
        assert member.id is not None
        tag = await _tag_to_add(session, name, group, bool(group))
        if isinstance(tag, str):
            problem: str | None = tag
        else:
            problem = None
            assert tag.id is not None
            change = TagChange()
            change.removed.extend(await clear_exclusive_group(session, config, member.id, tag, now))
            ref = await _staff_ref(session, viewer)
            if await apply_tag(session, member.id, tag, "staff", ref, now):
                change.added.append((tag.group, tag.name))
            else:
                await profile.claim_for_staff(session, member.id, tag.id, ref)
            await mark_members_changed(session, member.id, now)
            synced = await _queue_sync(session, config, member.id, change, now)
    if problem is not None:
        return await member_page(request, problem=problem, status=400)
    if synced:
        _wake_delivery(request)
    raise web.HTTPFound(f"/admin/members/{member.id}?done=tag_added#tags")


async def remove_tag(request: web.Request) -> web.Response:
    form = await request.post()
    name, group = str(form.get("name", "")).strip(), str(form.get("group", "")).strip()
    config, now = request.config_dict[HANDLERS], utcnow()
    async with request.config_dict[SESSIONS]() as session, session.begin():
        member = await _member_for(request, session)
        assert member.id is not None
        tag = await tag_named(session, group, name)
        removed = tag is not None and tag.id is not None and await remove_member_tags(session, member.id, [tag.id], now) > 0
        synced = False
        if removed:
            assert tag is not None
            synced = await _queue_sync(session, config, member.id, TagChange(removed=[(tag.group, tag.name)]), now)
    if synced:
        _wake_delivery(request)
    raise web.HTTPFound(f"/admin/members/{member.id}?done=tag_removed#tags")


async def change_opt_out(request: web.Request) -> web.Response:
    """An operator records her opt-out (said by phone, in the store…) or clears it at her
    own request, the way the opt-out handler does: the time, the "opted_out" event's tag
    rules, and the tag sync those bring."""
    viewer: Viewer = request[VIEWER]
    if not viewer.is_operator:
        raise web.HTTPForbidden(text="operators only / 仅运营可见")
    action = str((await request.post()).get("action", ""))
    if action not in ("record", "clear"):
        raise web.HTTPBadRequest(text="action must be record or clear")
    config, now = request.config_dict[HANDLERS], utcnow()
    synced = False
    async with request.config_dict[SESSIONS]() as session, session.begin():
        member = await _member_for(request, session)
        assert member.id is not None
        if action == "record" and member.opted_out_at is None:
            member.opted_out_at, member.updated_at = now, now
            session.add(member)
            change = await tag_event(session, config, member.id, "opted_out", now)
            synced = await _queue_sync(session, config, member.id, change, now)
            log.info("console: %s recorded the opt-out of member %s", viewer.login, member.id)
        elif action == "clear" and member.opted_out_at is not None:
            member.opted_out_at, member.updated_at = None, now
            session.add(member)
            log.info("console: %s cleared the opt-out of member %s", viewer.login, member.id)
    if synced:
        _wake_delivery(request)
    raise web.HTTPFound(f"/admin/members/{member.id}?done={'opted_out' if action == 'record' else 'opted_in'}")
