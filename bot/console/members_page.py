"""Members: search (name, phone tail, tag) and one member's page — profile, opt-out, tags
and why, layers and their history, timeline, orders, six moments, care dates, open tasks —
with the hand edits: tags (staff and operators) and opt-out (operators).

A staff login reads only the members it may (`Viewer.member_scope`); any other member is
"not found", so her existence is not disclosed. Edits take the same paths as the
handlers: tags through `storage.tags` with source "staff", opt-out as the opt-out handler
records it, and a `mark_tag` outbox row wherever WeCom's tags follow ours.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.console.keys import VIEWER, operators_only
from bot.console.bulk_log import recent_log
from bot.console.render import render
from bot.shared.rule_words import rule_reading
from bot.console.segment_form import UNOWNED, describe, read_rule, rule_query
from bot.console.segments_page import NOTICES as BULK_NOTICES
from bot.console.segments_page import schemes_of, segment_choices
from bot.shared.access import Viewer
from bot.shared.keys import SESSIONS
from bot.shared.live_config import live
from bot.shared.member_value import member_value
from bot.shared.member_edits import (
    add_tag_by_hand,
    queue_sync,
    remove_tag_by_hand,
    scheme_and_layer_labels,
    wake_delivery,
)
from bot.shared.params import path_id, whole_number
from handlers.member_card import care_days
from handlers.tag_engine import tag_event, untag_event
from scheduler.six_moments import LABELS as MOMENT_LABELS
from storage import member_profile as profile
from storage.care import plan_of
from storage.members import PHONE_TAIL_DIGITS, identities_of, mask_phones, masked_phone, phone_tail, store_and_owner
from storage.models import Member, Staff, Store, utcnow
from storage.segment_models import Segment
from storage.segments import SegmentRule, count_members, resolve_segment, saved_segments, segment_condition
from storage.tags import (
    interests_of,
    tags_of,
)

log = logging.getLogger(__name__)
PER_PAGE, MAX_PAGE = 50, 10_000
TIMELINE, ORDERS = 50, 20
SOURCES = {"rule": "规则", "staff": "店员", "platform": "平台", "import": "导入"}
SPEAKERS = {"message_in": "会员说", "message_out": "自动回复", "staff_out": "店员回复", "event": "事件"}
METRIC_LABELS = {
    "frequency": "窗口内订单数", "monetary_cents": "窗口内消费", "r_score": "近度分 R", "f_score": "频度分 F",
    "m_score": "金额分 M", "paid_member": "付费会员", "referrals": "推荐人数", "last_order_at": "最近下单",
    "p_alive": "仍是老客的概率", "orders_90d": "预计 90 天订单", "clv_90d": "预计 90 天消费",
}
SCORE_LABELS = {"r_min": "近度分 R 至少", "f_min": "频度分 F 至少", "m_min": "金额分 M 至少"}
SEGMENT_NOTICES = {"saved": "细分已保存，可在内容日历的受众里按名称使用。", "deleted": "细分已删除。"}
NOTICES = {
    "tag_added": "标签已加上。", "tag_removed": "标签已去掉。",
    "opted_out": "已记下会员的退订：营销消息不再发给这位会员。", "opted_in": "已取消退订：会员又会收到营销消息。",
}


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
    digits = re.sub(r"[\s-]", "", unicodedata.normalize("NFKC", q))
    if digits.isdigit():
        return profile.MemberFilter(phone_tail=digits)  # searched only when it is the last four
    return profile.MemberFilter(name=q)


def page_number(raw: str | None) -> int:
    number = whole_number(raw)
    return min(number, MAX_PAGE) if number else 1


def page_link(q: str, tag: str, page: int, rule: SegmentRule | None = None) -> str:
    query = [(k, v) for k, v in (("q", q), ("tag", tag), *(rule_query(rule) if rule else []),
                                 ("page", str(page) if page > 1 else "")) if v]
    return "/admin/members" + (f"?{urlencode(query)}" if query else "")


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


# ── Pages ──────────────────────────────────────────────────────────────────────────────


async def member_list(request: web.Request) -> web.Response:
    viewer: Viewer = request[VIEWER]
    q, tag = request.query.get("q", "").strip()[:64], request.query.get("tag", "").strip()[:64]
    page = page_number(request.query.get("page"))
    wanted = read_query(q)
    settings = live(request).settings
    schemes_layers = schemes_of(settings)
    segment_id = request.query.get("segment", "")
    async with request.config_dict[SESSIONS]() as session:
        segment = await session.get(Segment, int(segment_id)) if segment_id.isdigit() else None
        if segment is not None:
            rule, problems = SegmentRule.from_json(segment.rule), []
        else:
            rule, problems = read_rule(request.query, schemes_layers)
        resolved = await resolve_segment(session, rule, utcnow())
        scope = and_(viewer.member_scope(), segment_condition(Member.__table__, resolved)) \
            if not rule.empty else viewer.member_scope()  # type: ignore[arg-type]
        if tag:
            wanted = profile.MemberFilter(wanted.name, wanted.phone_tail, await profile.tag_ids_for(session, tag))
        found = await profile.search_page(session, scope, wanted, page, PER_PAGE)
        count = await count_members(session, resolved, viewer.member_scope()) if not rule.empty else None
        tags = await profile.known_tags(session)
        segments = await saved_segments(session)
        stores = (await session.execute(select(Store).order_by(Store.name))).scalars().all()  # type: ignore[arg-type]
        staff = (await session.execute(select(Staff).where(Staff.active).order_by(Staff.name))).scalars().all()  # type: ignore[arg-type]
        bulk_lines = await recent_log(session) if viewer.is_operator else []
    settings = live(request).settings
    schemes, layers = scheme_and_layer_labels(settings.layers.schemes)
    here = [("q", q), ("tag", tag), *rule_query(rule)]
    back = "/admin/members" + (f"?{urlencode([(k, v) for k, v in here if v])}" if any(v for _, v in here) else "")
    done = request.query.get("done", "")
    n = request.query.get("n", "")
    return render(
        request, "members.html", rows=found.rows, q=q, tag=tag, tags=tags, page=page,
        previous=page_link(q, tag, page - 1, rule) if page > 1 else None,
        next=page_link(q, tag, page + 1, rule) if found.has_next else None,
        by_phone=bool(wanted.phone_tail), tail_refused=bool(wanted.phone_tail) and phone_tail(wanted.phone_tail) is None,
        tail_digits=PHONE_TAIL_DIGITS, schemes=schemes, layers=layers, local=_localiser(settings.zone),
        per_page=PER_PAGE, scheme_layers=schemes_layers, chosen=describe(rule), rule=rule, rule_json=rule.to_json(),
        problems=problems, count=count, segments=segment_choices(segments), segment=segment, stores=stores,
        staff=staff, back=back, unowned=UNOWNED, rule_pairs=rule_query(rule), score_labels=SCORE_LABELS,
        notice=(BULK_NOTICES.get(done), {"n": int(n)} if n.isdigit() else {}) if done in BULK_NOTICES else None,
        wecom_notice=int(w) if done == "transfer" and (w := request.query.get("w", "")).isdigit() and int(w) else None,
        saved_notice=SEGMENT_NOTICES.get(done), bulk_lines=bulk_lines,
    )


def _localiser(zone: ZoneInfo):  # noqa: ANN202
    return lambda moment: moment.astimezone(zone) if moment is not None else None


async def _member_for(request: web.Request, session: AsyncSession) -> Member:
    """The member of the path, if this viewer may read her; "not found" otherwise."""
    viewer: Viewer = request[VIEWER]
    member = await session.get(Member, path_id(request.match_info["id"]))
    if member is None or member.id is None or not await viewer.may_see_member(session, member):
        raise web.HTTPNotFound(text="no such member / 没有这个会员")
    return member


async def member_page(request: web.Request, problem: str | None = None, status: int = 200) -> web.Response:
    settings = live(request).settings
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
            "timeline": await profile.timeline(session, member.id, TIMELINE + 1, whole_number(before)),
            "orders": await profile.orders_of(session, member.id, ORDERS),
            "plan": await plan_of(session, member.id),
            "tasks": await profile.open_tasks_about(session, member.id),
            "known_tags": await profile.known_tags(session),
            "ltv": await member_value(session, member.id, settings.outcomes.ltv_horizon_days),
        }
    schemes, layers = scheme_and_layer_labels(settings.layers.schemes)
    events = record.pop("timeline")
    return render(
        request, "member.html", http_status=status, member=member, store=store, owner=owner, **record,
        phone=masked_phone(member.phone), remark=mask_phones(member.remark, member.phone),
        events=[(e, mask_phones(e.text, member.phone)) for e in events[:TIMELINE]],
        more=f"/admin/members/{member.id}?before={events[TIMELINE - 1].id}#timeline" if len(events) > TIMELINE else None,
        paged=whole_number(before) is not None, groups=sorted({t.group for t in record["known_tags"] if t.group}),
        care=care_days(member, today), today=today, schemes=schemes, layers=layers, local=_localiser(zone),
        sources=SOURCES, speakers=SPEAKERS, moment_labels=MOMENT_LABELS, yuan=yuan, problem=problem,
        notice=NOTICES.get(request.query.get("done", "")),
        rule_readings={rule.id: rule_reading(rule) for rule in settings.tags.rules},  # a rule in words, not its id
    )


# ── Edits ──────────────────────────────────────────────────────────────────────────────


async def add_tag(request: web.Request) -> web.Response:
    form = await request.post()
    config, now = live(request).handlers, utcnow()
    async with request.config_dict[SESSIONS]() as session, session.begin():
        member = await _member_for(request, session)
        assert member.id is not None
        problem, synced = await add_tag_by_hand(
            session, config, request[VIEWER], member.id, str(form.get("name", "")), str(form.get("group", "")), now
        )
    if problem is not None:
        return await member_page(request, problem=problem, status=400)
    if synced:
        wake_delivery(request)
    raise web.HTTPFound(f"/admin/members/{member.id}?done=tag_added#tags")


async def remove_tag(request: web.Request) -> web.Response:
    form = await request.post()
    config, now = live(request).handlers, utcnow()
    async with request.config_dict[SESSIONS]() as session, session.begin():
        member = await _member_for(request, session)
        assert member.id is not None
        synced = await remove_tag_by_hand(session, config, member.id, str(form.get("name", "")),
                                          str(form.get("group", "")), now)
    if synced:
        wake_delivery(request)
    raise web.HTTPFound(f"/admin/members/{member.id}?done=tag_removed#tags")


async def change_opt_out(request: web.Request) -> web.Response:
    """An operator records her opt-out (said by phone, in the store…) or clears it at her
    own request, the way the opt-out handler does: the time, the "opted_out" event's tag
    rules, and the tag sync those bring."""
    viewer = operators_only(request)
    action = str((await request.post()).get("action", ""))
    if action not in ("record", "clear"):
        raise web.HTTPBadRequest(text="action must be record or clear")
    config, now = live(request).handlers, utcnow()
    synced = False
    async with request.config_dict[SESSIONS]() as session, session.begin():
        member = await _member_for(request, session)
        assert member.id is not None
        if action == "record" and member.opted_out_at is None:
            member.opted_out_at, member.updated_at = now, now
            session.add(member)
            change = await tag_event(session, config, member.id, "opted_out", now)
            synced = await queue_sync(session, config, member.id, change, now)
            log.info("console: %s recorded the opt-out of member %s", viewer.login, member.id)
        elif action == "clear" and member.opted_out_at is not None:
            member.opted_out_at, member.updated_at = None, now
            session.add(member)
            change = await untag_event(session, config, member.id, "opted_out", now)
            synced = await queue_sync(session, config, member.id, change, now)
            log.info("console: %s cleared the opt-out of member %s", viewer.login, member.id)
    if synced:
        wake_delivery(request)
    raise web.HTTPFound(f"/admin/members/{member.id}?done={'opted_out' if action == 'record' else 'opted_in'}")
