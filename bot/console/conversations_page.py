"""Conversations and hand-offs: a member's whole conversation (every platform, both ways,
with what the bot did and why), a reply box where the brand's account speaks, and the
queue of open hand-offs (unassigned first, then the oldest) with assignment.

A reply is an outbox row like any other (kind service, so the delivery policy lets it
through an opt-out, as it does the bot's own answers), marked `by_staff` so delivery
records it as a person's reply. A WeCom contact's chat belongs to the staff member who
added her, in her own WeCom client: the page shows the conversation and who is on it.
"""

from __future__ import annotations

import json
import logging
import uuid

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.console.keys import VIEWER
from bot.console.render import render
from bot.shared.access import Viewer
from bot.shared.live_config import live
from bot.shared.keys import HANDLERS, SESSIONS
from bot.shared.member_edits import wake_delivery
from handlers.outbound import prompt_meta, task_page
from storage.conversations import HANDOFF, conversation, open_handoffs, reply_route, unassigned_handoffs
from storage.members import identities_of, mask_phones
from storage.models import Member, Staff, StaffTask, utcnow
from storage.outbox import NewOutboxMessage, enqueue
from storage.tasks import close_task

log = logging.getLogger(__name__)
MAX_REPLY = 1000
KINDS = {"in": "会员", "bot": "机器人", "staff": "店员", "event": "事件", "tag": "打标签", "handoff": "转人工"}
WHY = {
    "persona": "人设回复", "out_of_hours": "非营业时间回复", "opt_out": "退订确认", "opt_in": "重新订阅确认",
    "budget": "回复次数已满的提示", "service": "服务消息", "marketing": "营销消息", "care": "关怀消息",
    "hand-off word": "转人工关键词", "angry tone": "情绪激动", "unanswered question": "无法回答的问题",
}
STATUS = {"sent": "已送达", "pending": "待发送", "held": "已拦截", "deferred": "延后发送", "failed": "发送失败",
          "sending": "发送中", "open": "待办", "done": "已完成", "skipped": "已跳过"}
NOTICES = {"replied": "回复已排队发送。", "assigned": "已分配。"}


def add_routes(console: web.Application) -> None:
    console.router.add_get("/members/{id:\\d+}/conversation", conversation_page)
    console.router.add_post("/members/{id:\\d+}/reply", send_reply)
    console.router.add_get("/handoffs", handoff_queue)
    console.router.add_post("/handoffs/{id:\\d+}/assign", assign)


def readable_why(why: str) -> tuple[str, str]:
    """A reason as (phrase, detail): an FAQ id or a hand-off reason is the detail."""
    head, _, rest = why.partition(":")
    if head == "faq":
        return "常见问题", rest
    if head == "handoff":
        return "转人工", WHY.get(rest, rest)
    return WHY.get(why, why), ""


async def _member_for(request: web.Request, session: AsyncSession) -> Member:
    viewer: Viewer = request[VIEWER]
    member = await session.get(Member, int(request.match_info["id"]))
    if member is None or member.id is None or not await viewer.may_see_member(session, member):
        raise web.HTTPNotFound(text="no such member / 没有这个会员")
    return member


async def conversation_page(request: web.Request) -> web.Response:
    settings = live(request).settings
    async with request.config_dict[SESSIONS]() as session:
        member = await _member_for(request, session)
        assert member.id is not None
        lines = await conversation(session, member.id)
        route = await reply_route(session, member.id)
        owner = await session.get(Staff, member.owner_staff_id) if member.owner_staff_id else None
        wecom = any(i.platform == "wecom" for i in await identities_of(session, member.id))
        handoff = (await session.execute(select(StaffTask).where(
            StaffTask.member_id == member.id, StaffTask.kind == HANDOFF, StaffTask.status == "open"))).scalars().first()
    return render(
        request, "conversation.html", member=member, owner=owner, route=route, wecom=wecom, handoff=handoff,
        lines=[(line, mask_phones(line.text, member.phone), readable_why(line.why) if line.kind in ("bot", "handoff")
                else (line.why, "")) for line in lines],
        kinds=KINDS, statuses=STATUS, local=lambda m: m.astimezone(settings.zone), max_reply=MAX_REPLY,
        notice=NOTICES.get(request.query.get("done", "")), problem=None,
    )


async def send_reply(request: web.Request) -> web.Response:
    viewer: Viewer = request[VIEWER]
    form = await request.post()
    text = str(form.get("text", "")).strip()
    if not text or len(text) > MAX_REPLY:
        raise web.HTTPBadRequest(text="write 1 to 1000 characters / 回复内容必填，最多 1000 字")
    now = utcnow()
    async with request.config_dict[SESSIONS]() as session, session.begin():
        member = await _member_for(request, session)
        assert member.id is not None
        route = await reply_route(session, member.id)
        if route is None:
            raise web.HTTPConflict(text="this member is answered in WeCom by the owner / 该会员请在企业微信里回复")
        meta = {"by_staff": viewer.name or viewer.login, "why": "console"} | (
            {"conversation": route.conversation} if route.conversation else {})
        await enqueue(session, [NewOutboxMessage(
            f"console-reply:{member.id}:{uuid.uuid4().hex}", route.platform, route.recipient, "service", text,
            member_id=member.id, staff_id=viewer.staff_id, meta=json.dumps(meta, ensure_ascii=False),
        )], now)
        if str(form.get("close", "")) == "1":
            for task in (await session.execute(select(StaffTask).where(
                    StaffTask.member_id == member.id, StaffTask.kind == HANDOFF, StaffTask.status == "open"))).scalars():
                if await viewer.may_act_on_task(session, task):
                    await close_task(session, task, "done", "console reply", now, live(request).settings.outcomes.scheme)
    log.info("console: %s replied to member %s on %s", viewer.login, member.id, route.platform)
    wake_delivery(request)
    raise web.HTTPFound(f"/admin/members/{member.id}/conversation?done=replied#reply")


async def handoff_queue(request: web.Request) -> web.Response:
    viewer: Viewer = request[VIEWER]
    async with request.config_dict[SESSIONS]() as session:
        if viewer.is_operator:
            rows = await open_handoffs(session, None, None)
        else:
            rows = await open_handoffs(session, viewer.staff_id or -1, viewer.store_id)
        unassigned = await unassigned_handoffs(session) if viewer.is_operator else sum(
            1 for r in rows if r.task.staff_id is None)
        staff = await _assignable(session, viewer)
    now = utcnow()
    return render(request, "handoffs.html", rows=rows, staff=staff, unassigned=unassigned,
                  age=lambda at: _age(now - at), reasons=WHY, notice=NOTICES.get(request.query.get("done", "")),
                  may_assign=viewer.is_operator or viewer.store_id is not None)


def _age(delta) -> tuple[str, dict[str, int]]:  # type: ignore[no-untyped-def]
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 60:
        return "{n} 分钟", {"n": minutes}
    if minutes < 48 * 60:
        return "{n} 小时", {"n": minutes // 60}
    return "{n} 天", {"n": minutes // (24 * 60)}


async def _assignable(session: AsyncSession, viewer: Viewer) -> list[Staff]:
    """Whom this viewer may give a hand-off to: anyone active (operators), her store's (a manager)."""
    statement = select(Staff).where(Staff.active.is_(True)).order_by(Staff.name)  # type: ignore[attr-defined]
    if not viewer.is_operator:
        if viewer.store_id is None:
            return []
        statement = statement.where(Staff.store_id == viewer.store_id)
    return list((await session.execute(statement)).scalars())


async def assign(request: web.Request) -> web.Response:
    viewer: Viewer = request[VIEWER]
    form = await request.post()
    config, now = request.config_dict[HANDLERS], utcnow()
    async with request.config_dict[SESSIONS]() as session, session.begin():
        task = await session.get(StaffTask, int(request.match_info["id"]))
        if task is None or task.kind != HANDOFF:
            raise web.HTTPNotFound(text="no such hand-off / 没有这个转人工任务")
        member = await session.get(Member, task.member_id) if task.member_id else None
        allowed = viewer.is_operator or (viewer.store_id is not None and (
            await viewer.may_act_on_task(session, task) or (member is not None and member.store_id == viewer.store_id)))
        if not allowed:
            raise web.HTTPForbidden(text="only operators and the store's manager assign / 仅运营和本店店长可分配")
        choices = {s.userid: s for s in await _assignable(session, viewer)}
        staff = choices.get(str(form.get("staff", "")))
        if staff is None or staff.id is None:
            raise web.HTTPBadRequest(text="choose a staff member / 请选择店员")
        task.staff_id = staff.id
        session.add(task)
        route = await reply_route(session, member.id) if member is not None and member.id is not None else None
        platform = config.staff_platform_for(route.platform if route else "wecom")
        if platform is not None:
            await enqueue(session, [NewOutboxMessage(
                f"prompt:assign:{task.id}:{staff.id}:{uuid.uuid4().hex[:8]}", platform, staff.userid, "staff_prompt",
                task.body or task.title, meta=prompt_meta(task_page(task.id), task.title),
            )], now)
    log.info("console: %s assigned hand-off %s to %s", viewer.login, task.id, staff.userid)
    wake_delivery(request)
    raise web.HTTPFound("/admin/handoffs?done=assigned")
