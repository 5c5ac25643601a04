"""What a member's contact events mean: a new contact, a returning one, churn.

New contacts get their owner, store and channel tags, the persona's welcome (only when
the platform hands us a welcome code: without one, the staff already greeted her or the
console sends its own), and a profile fetch. Churn is recorded, and the owner prompted.
A customer transferred to a colleague (在职/离职继承) takes her open tasks along; a
transfer that failed stays with her owner, who is told why.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta

from content_templates.renderer import Renderer
from handlers.actions import Action, FetchProfile, PromptStaff, Welcome
from handlers.config import HandlerConfig
from handlers.context import HandlerContext
from handlers.outbound import task_page
from handlers.tag_engine import sync_actions, tag_event
from handlers.updates import WELCOME_EVENTS, EventUpdate, Update
from storage.members import store_and_owner
from storage.reassign import follow_new_owner
from storage.staff import ensure_staff, staff_by_userid, store_by_code
from storage.tags import apply_tag, ensure_tag, tags_of
from storage.tasks import NewTask, create_task
from storage.transfers import started_takeover

ADDED = WELCOME_EVENTS
TRANSFERRED = "DELETE_BY_TRANSFER"
CHANNEL_TAG_GROUP = "渠道"
TRANSFER_FAILED_TEMPLATE = "staff/transfer_failed.txt.j2"


async def handle(update: Update, ctx: HandlerContext) -> Sequence[Action]:
    if not isinstance(update, EventUpdate):
        return ()
    if update.event in ADDED:
        return await _welcome_new_contact(update, ctx)
    if update.event in ("edit_external_contact", "subscribe"):
        return (FetchProfile(update.platform, update.sender),)
    if update.event == "del_follow_user":
        return await _record_churn(update, ctx, "deleted_staff")
    if update.event == "del_external_contact" and update.detail.get("Source") != TRANSFERRED:
        return await _record_churn(update, ctx, "deleted_by_staff")
    if update.event == "del_external_contact":
        return await _transferred_away(update, ctx)
    if update.event == "transfer_fail":
        return await _transfer_failed(update, ctx)
    return ()


CHANNEL_CODE = re.compile(r"[\w-]{1,64}")


async def _welcome_new_contact(update: EventUpdate, ctx: HandlerContext) -> Sequence[Action]:
    member, detail = ctx.member, update.detail
    channel = ctx.config.channels.get(detail.get("State", ""))
    owner_userid = (channel.owner if channel and channel.owner else None) or detail.get("UserID")
    if owner_userid:
        owner = await ensure_staff(ctx.session, owner_userid)
        previous = member.owner_staff_id
        member.owner_staff_id = owner.id
        member.store_id = owner.store_id or member.store_id
        if member.id is not None and owner.id is not None and previous != owner.id:
            # A transfer (or a colleague adding her): her open work goes to whoever owns her now.
            await follow_new_owner(ctx.session, member.id, previous, owner.id)
    if channel is not None:
        if channel.store and (store := await store_by_code(ctx.session, channel.store)):
            member.store_id = store.id
        assert member.id is not None
        for name in channel.tags:
            tag = await ensure_tag(ctx.session, name, CHANNEL_TAG_GROUP)
            if await apply_tag(ctx.session, member.id, tag, "platform", f"channel:{channel.state}", ctx.now):
                ctx.new_tags.append(name)
    member.left_at, member.left_reason = None, None  # a returning member is back
    ctx.session.add(member)
    assert member.id is not None
    change = await tag_event(ctx.session, ctx.config, member.id, "added_via_channel", ctx.now, detail.get("State", ""))
    ctx.new_tags.extend(name for _, name in change.added)
    actions: list[Action] = [FetchProfile(update.platform, update.sender)]
    actions.extend(sync_actions(ctx.config, update.platform, update.sender, change))
    if code := detail.get("WelcomeCode"):
        store, _ = await store_and_owner(ctx.session, member)
        text = welcome_text(ctx.renderer, ctx.config, detail.get("State", ""), member.name, store.name if store else None)
        # First, with the key handlers/early_welcome.py gave it when it went ahead of the
        # rest (then this one is dropped as a duplicate): WeCom takes it only within 20 s.
        actions.insert(0, Welcome(code, text))
    return actions


def welcome_text(
    renderer: Renderer, config: HandlerConfig, state: str, member_name: str | None, store_name: str | None
) -> str:
    channel = config.channels.get(state)
    return renderer.render(welcome_template(renderer, config, state), {
        "persona": config.persona.template_variables(),
        "member": {"name": member_name},
        "store": {"name": store_name} if store_name else None,
        "channel_tags": list(channel.tags) if channel else [],
    })


def welcome_template(renderer: Renderer, config: HandlerConfig, state: str) -> str:
    """The channel's own welcome (`persona/welcome/<channel code>.txt.j2`, written in the
    console) when there is one, else the persona's."""
    own = f"persona/welcome/{state}.txt.j2"
    return own if state and CHANNEL_CODE.fullmatch(state) and renderer.has_text(own) else config.welcome_template


async def _record_churn(update: EventUpdate, ctx: HandlerContext, reason: str) -> Sequence[Action]:
    member = ctx.member
    assert member.id is not None
    member.left_at, member.left_reason = update.occurred_at, reason
    ctx.session.add(member)
    if reason == "deleted_staff":
        await tag_event(ctx.session, ctx.config, member.id, "deleted_staff", ctx.now)
    _, owner = await store_and_owner(ctx.session, member)
    acting = update.detail.get("UserID")
    if owner is None and acting:
        owner = await staff_by_userid(ctx.session, acting)
    if owner is None or (reason == "deleted_by_staff" and owner.userid == acting):
        return ()  # nobody to prompt, or the owner removed her and knows already
    tags = [t.name for t in await tags_of(ctx.session, member.id)]
    local = update.occurred_at.astimezone(ctx.config.zone) if ctx.config.zone else update.occurred_at
    text = ctx.renderer.render(
        ctx.config.churn_prompt_template,
        {
            "member": {"name": member.name, "external_id": update.sender, "tags": tags},
            "reason": reason,
            "when": local.strftime("%m-%d %H:%M"),
        },
    )
    task = await create_task(
        ctx.session,
        NewTask(
            dedupe_key=f"churn:{member.id}:{update.key}",
            kind="churn_follow_up",
            title=f"流失回访：{member.name or update.sender}",
            body=text,
            due_date=(local + timedelta(days=1)).date(),
            staff_id=owner.id,
            member_id=member.id,
        ),
        ctx.now,
    )
    return (PromptStaff(update.platform, owner.userid, text, link=task_page(task.id), title=task.title),)


async def _transferred_away(update: EventUpdate, ctx: HandlerContext) -> Sequence[Action]:
    """WeCom moved her from her owner to the colleague a console transfer named. Usually
    the colleague's add_external_contact says so too, but not when she already had her
    as a contact (WeCom sends no add then): her owner and open work move here."""
    member, handover = ctx.member, update.detail.get("UserID", "")
    takeover = await started_takeover(ctx.session, update.sender, handover) if handover else None
    _, owner = await store_and_owner(ctx.session, member)
    if takeover is None or owner is None or owner.userid != handover:
        return ()
    taker = await staff_by_userid(ctx.session, takeover)
    if taker is None or taker.id is None or member.id is None:
        return ()
    member.owner_staff_id = taker.id
    member.store_id = taker.store_id or member.store_id
    ctx.session.add(member)
    await follow_new_owner(ctx.session, member.id, owner.id, taker.id)
    return ()


async def _transfer_failed(update: EventUpdate, ctx: HandlerContext) -> Sequence[Action]:
    """The customer refused the colleague, or the colleague has too many customers: she
    stays with her owner, who hears of it. (UserID names the colleague who was to take
    her over, not the owner.)"""
    member = ctx.member
    _, owner = await store_and_owner(ctx.session, member)
    platform = ctx.config.staff_platform_for(update.platform)
    if owner is None or not owner.active or platform is None:
        return ()
    taker_userid = update.detail.get("UserID", "")
    taker = await staff_by_userid(ctx.session, taker_userid) if taker_userid else None
    local = ctx.config.local(update.occurred_at)
    text = ctx.renderer.render(TRANSFER_FAILED_TEMPLATE, {
        "member": {"name": member.name, "external_id": update.sender},
        "taker": taker.name if taker is not None else taker_userid,
        "reason": update.detail.get("FailReason", ""),
        "when": local.strftime("%m-%d %H:%M"),
    })
    return (PromptStaff(platform, owner.userid, text),)
