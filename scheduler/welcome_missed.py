"""A welcome that could not go in time: its owner is asked, once, to greet by hand.

WeCom's welcome code lives 20 s and is then refused (41050); after that only the staff
member who added the customer can greet her, in her own WeCom client.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.outbound import prompt_meta, task_page
from storage.members import store_and_owner
from storage.models import Member, OutboxEntry
from storage.outbox import NewOutboxMessage, enqueue
from storage.tasks import NewTask, create_task

KIND = "welcome_by_hand"


async def prompt_owner(session: AsyncSession, row: OutboxEntry, reason: str, now: datetime) -> bool:
    """A task for the member's owner (keyed on the welcome row: once) and a prompt to her
    — one a minute at most: a burst that misses 300 welcomes must not send her 300
    messages (WeCom would drop all but 30 anyway); the prompt points at her task list.
    False when the member has no owner to ask."""
    member = await session.get(Member, row.member_id) if row.member_id is not None else None
    if member is None:
        return False
    _, owner = await store_and_owner(session, member)
    if owner is None:
        return False
    name = member.name or "新客户"
    title = f"欢迎语未能送达，请手动问候 {name}"
    body = (
        f"{name} 刚添加了你，但系统的欢迎语没能在 20 秒内发出（{reason}）。\n"
        f"请在企业微信里给她发一句问候。\n欢迎语原文：{row.body}"
    )
    task = await create_task(session, NewTask(
        f"welcome-missed:{row.id}", KIND, title, now.date(), staff_id=owner.id, member_id=member.id, body=body,
    ), now)
    prompt = (
        f"{name} 等新客户没能在 20 秒内收到欢迎语（{reason}）。\n"
        f"请在企业微信里逐一手动问候，任务列表里的「手动欢迎」任务列出了每一位。"
    )
    await enqueue(session, [NewOutboxMessage(
        f"prompt:welcome-missed:{owner.id}:{now:%Y%m%d%H%M}", row.platform, owner.userid, "staff_prompt", prompt,
        staff_id=owner.id, meta=prompt_meta(task_page(task.id), title),
    )], now)
    return True
