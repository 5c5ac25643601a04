"""Segments and bulk actions on the members page: the builder's live count, named
segments (saved, loaded, deleted), and actions on a selection — tags added or taken
off, an owner assigned, a transfer to a colleague, an export to XLSX or CSV.

Bulk edits and exports are for operators: a staff login gets 403 and nothing changes.
Every bulk action is logged (who, what, how many) in `bulk_actions` and the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import true, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.console import export_files
from bot.console.i18n import translator
from bot.console.keys import LANGUAGE, PHONE_EXPORTERS, VIEWER, operators_only
from bot.console.segment_form import read_rule, rule_query
from bot.settings.model import Settings
from bot.shared.access import Viewer
from bot.shared.live_config import live
from bot.shared.keys import HANDLERS, SESSIONS
from bot.shared.member_edits import add_tag_by_hand, remove_tag_by_hand, scheme_and_layer_labels, wake_delivery
from storage.models import Member, Staff, utcnow
from storage.reassign import follow_new_owner
from storage.segment_models import Segment
from storage.staff import staff_by_userid
from storage.segments import (
    SegmentRule,
    count_members,
    export_rows,
    log_bulk_action,
    member_ids,
    resolve_segment,
    save_segment,
)
from storage.outbox import enqueue
from storage.tables import MEMBERS
from storage.transfers import MESSAGE_MAX, Customer, transfer_rows, wecom_customers

log = logging.getLogger(__name__)
BULK_MAX, EXPORT_MAX, BATCH = 5000, 100_000, 1000
ACTIONS = ("tag_add", "tag_remove", "assign", "transfer", "export")
EXPORT_HEADERS = ("编号", "姓名", "手机", "门店", "负责店员", "分层", "标签", "订单数", "消费（元）", "最近互动", "入会日期", "已退订")
NOTICES = {
    "tag_add": "已给 {n} 位会员加上标签。", "tag_remove": "已从 {n} 位会员去掉标签。",
    "assign": "已给 {n} 位没有负责人的会员分配店员。", "transfer": "已把 {n} 位会员转给新的负责店员。",
}


def add_routes(console: web.Application) -> None:
    console.router.add_get("/members/count", live_count)
    console.router.add_post("/members/bulk", bulk_action)
    console.router.add_post("/segments", save)
    console.router.add_post("/segments/{id:\\d+}/delete", delete)


def schemes_of(settings: Settings) -> dict[str, list[str]]:
    """Each scheme's layer names, once each (a layer listed twice is an OR of conditions)."""
    return {s.name: list(dict.fromkeys(layer.name for layer in s.layers)) for s in settings.layers.schemes}


async def live_count(request: web.Request) -> web.Response:
    """How many members the builder's current choices hold (in this viewer's scope)."""
    viewer: Viewer = request[VIEWER]
    rule, problems = read_rule(request.query, schemes_of(live(request).settings))
    _ = translator(request.get(LANGUAGE, "zh"))
    async with request.config_dict[SESSIONS]() as session:
        count = await count_members(session, await resolve_segment(session, rule, utcnow()), viewer.member_scope())
    return web.json_response({"count": count, "text": _("符合条件：{n} 人", n=count),
                              "problems": [_(p, **f) for p, f in problems]})


async def save(request: web.Request) -> web.Response:
    viewer = operators_only(request)
    form = await request.post()
    name = str(form.get("segment_name", "")).strip()
    if not name or len(name) > 64:
        raise web.HTTPBadRequest(text="a segment needs a name of 1 to 64 characters / 细分名称必填，最多 64 个字")
    rule, problems = read_rule(form, schemes_of(live(request).settings))
    if problems or rule.empty:
        raise web.HTTPBadRequest(text="fix the conditions first / 请先改正筛选条件")
    async with request.config_dict[SESSIONS]() as session, session.begin():
        segment = await save_segment(session, name, rule, viewer.login, utcnow())
    log.info("console: %s saved segment %s", viewer.login, segment.id)
    raise web.HTTPFound(f"/admin/members?segment={segment.id}&done=saved")


async def delete(request: web.Request) -> web.Response:
    viewer = operators_only(request)
    async with request.config_dict[SESSIONS]() as session, session.begin():
        segment = await session.get(Segment, int(request.match_info["id"]))
        if segment is not None:
            await session.delete(segment)
    log.info("console: %s deleted segment %s", viewer.login, request.match_info["id"])
    raise web.HTTPFound("/admin/members?done=deleted")


# -- bulk actions ----------------------------------------------------------------------

async def _selection(session: AsyncSession, form: Mapping[str, Any], settings: Settings, limit: int) -> list[int]:
    """The members acted on: every one the rule holds ("all"), or those ticked."""
    if str(form.get("scope", "")) == "all":
        rule = SegmentRule.from_json(str(form.get("rule", "{}")))
        resolved = await resolve_segment(session, rule, utcnow())
        found: list[int] = []
        while len(found) < limit + 1:
            page = await member_ids(session, resolved, true(), min(BATCH, limit + 1 - len(found)), found[-1] if found else 0)
            if not page:
                break
            found += page
        return found
    ids = {int(v) for v in form.getall("member", []) if str(v).isdigit()}  # type: ignore[attr-defined]
    return sorted(ids)


async def bulk_action(request: web.Request) -> web.StreamResponse:
    viewer = operators_only(request)
    form = await request.post()
    action = str(form.get("action", ""))
    if action not in ACTIONS:
        raise web.HTTPBadRequest(text=f"action must be one of {', '.join(ACTIONS)}")
    settings: Settings = live(request).settings
    limit = EXPORT_MAX if action == "export" else BULK_MAX
    async with request.config_dict[SESSIONS]() as session:
        ids = await _selection(session, form, settings, limit)
    back = str(form.get("back", "")) or "/admin/members"
    back = back if back.startswith("/admin/members") else "/admin/members"
    if not ids:
        raise web.HTTPBadRequest(text="no member selected / 没有选中会员")
    if len(ids) > limit:
        raise web.HTTPBadRequest(text="too many members at once: narrow the selection / 一次选中的会员太多，请缩小范围")
    if action == "export":
        return await _export(request, viewer, form, ids)
    detail, changed = await _edit(request, viewer, action, form, ids)
    log.info("console: %s bulk %s on %d members (%d changed, %d to WeCom)", viewer.login, action, len(ids), changed,
             detail.get("wecom", 0))
    join = "&" if "?" in back else "?"
    raise web.HTTPFound(f"{back}{join}{urlencode({'done': action, 'n': changed, 'w': detail.get('wecom', 0)})}")


async def _edit(request: web.Request, viewer: Viewer, action: str, form: Mapping[str, Any],
                ids: Sequence[int]) -> tuple[dict[str, Any], int]:
    config, now = request.config_dict[HANDLERS], utcnow()
    changed, synced = 0, False
    async with request.config_dict[SESSIONS]() as session, session.begin():
        if action in ("tag_add", "tag_remove"):
            name, group = str(form.get("tag_name", "")).strip(), str(form.get("tag_group", "")).strip()
            detail: dict[str, Any] = {"tag": name, "group": group}
            for member_id in ids:
                if action == "tag_add":
                    problem, queued = await add_tag_by_hand(session, config, viewer, member_id, name, group, now)
                    if problem is not None:
                        raise web.HTTPBadRequest(text=f"{problem}")
                    changed += 1
                else:
                    queued = await remove_tag_by_hand(session, config, member_id, name, group, now)
                    changed += 1
                synced = synced or queued
        else:
            staff = await _staff_named(session, str(form.get("staff", "")))
            assert staff.id is not None
            detail = {"staff": staff.userid}
            message = _transfer_message(form) if action == "transfer" else ""
            in_wecom = await wecom_customers(session, ids) if action == "transfer" and _has_wecom(request) else {}
            handed: list[Customer] = []
            members = await session.execute(
                MEMBERS.select().with_only_columns(MEMBERS.c.id, MEMBERS.c.owner_staff_id).where(MEMBERS.c.id.in_(ids)))
            for member_id, owner in members.all():
                if (action == "assign" and owner is not None) or owner == staff.id:
                    continue
                if (customer := in_wecom.get(member_id)) is not None:
                    # WeCom moves her in 24 hours unless she refuses; the contact
                    # callbacks then move her here too. Until then she stays with her owner.
                    handed.append(customer)
                    continue
                await session.execute(update(Member).where(Member.id == member_id)  # type: ignore[arg-type]
                                      .values(owner_staff_id=staff.id, updated_at=now))
                await follow_new_owner(session, member_id, owner, staff.id)
                changed += 1
            if handed:
                detail["wecom"] = len(handed)
        bulk_id = await log_bulk_action(session, viewer.login, action, detail, changed, now)
        if action == "transfer" and handed:
            await enqueue(session, transfer_rows(bulk_id, staff.userid, handed, message), now)
            synced = True
    if synced:
        wake_delivery(request)
    return detail, changed


def _has_wecom(request: web.Request) -> bool:
    return live(request).settings.platforms.wecom is not None


def _transfer_message(form: Mapping[str, Any]) -> str:
    """What WeCom says to each customer once she has moved (its default text when empty)."""
    text = str(form.get("transfer_message", "")).strip()
    if len(text) > MESSAGE_MAX:
        raise web.HTTPBadRequest(text="the message to customers is at most 200 characters / 转接后发给客户的话最多 200 个字")
    return text


async def _staff_named(session: AsyncSession, userid: str) -> Staff:
    staff = await staff_by_userid(session, userid)
    if staff is None or staff.id is None or not staff.active:
        raise web.HTTPBadRequest(text="choose an active staff member / 请选择在职店员")
    return staff


async def _export(request: web.Request, viewer: Viewer, form: Mapping[str, Any], ids: Sequence[int]) -> web.StreamResponse:
    fmt = str(form.get("format", "xlsx"))
    if fmt not in export_files.FORMATS:
        raise web.HTTPBadRequest(text="format must be xlsx or csv")
    wants_phones = str(form.get("full_phones", "")) == "1"
    if wants_phones and viewer.login not in request.config_dict[PHONE_EXPORTERS]:
        raise web.HTTPForbidden(text="this login may not export whole phone numbers / 此账号不能导出完整手机号")
    settings: Settings = live(request).settings
    _, layers = scheme_and_layer_labels(settings.layers.schemes)
    _t = translator(request.get(LANGUAGE, "zh"))
    rows = []
    async with request.config_dict[SESSIONS]() as session:
        for start in range(0, len(ids), BATCH):
            rows += await export_rows(session, ids[start:start + BATCH])
    cells = export_files.table(rows, [_t(h) for h in EXPORT_HEADERS], wants_phones,
                               lambda s, layer: layers.get((s, layer), layer), _t("是"), _t("否"))
    body = await asyncio.to_thread(export_files.WRITERS[fmt], cells)
    async with request.config_dict[SESSIONS]() as session, session.begin():
        await log_bulk_action(session, viewer.login, "export", {"format": fmt, "full_phones": wants_phones},
                              len(rows), utcnow())
    log.info("console: %s exported %d members as %s (whole phones: %s)", viewer.login, len(rows), fmt, wants_phones)
    stamp = utcnow().strftime("%Y%m%d-%H%M")
    return web.Response(body=body, headers={
        "Content-Type": export_files.FORMATS[fmt], "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="members-{stamp}.{fmt}"',
    })


def segment_choices(segments: Sequence[Segment]) -> list[tuple[int, str, str]]:
    """(id, name, the builder's query string) of each saved segment."""
    return [(s.id or 0, s.name, urlencode(rule_query(SegmentRule.from_json(s.rule)))) for s in segments]


def rule_json(rule: SegmentRule) -> str:
    return rule.to_json() if not rule.empty else json.dumps({})
