"""Group welcome templates and join ways reaching WeCom (routes `group_welcome` and
`join_way` of the WeCom sender): the row names a template key or a channel; what our
row says now is made true in WeCom — created, edited or deleted — and WeCom's answer
(a template id, a join way's config id and QR code, or its refusal) kept on our row."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.platforms.wecom import group_welcome as api
from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.errors import WeComApiError
from scheduler.delivery import OutboundMessage, SendResult
from storage.engine import SessionFactory
from storage.group_welcomes import WelcomeContent, content_of, welcome_by_key
from storage.outreach_models import GroupWelcome, JoinWay

NOT_FOUND = 40058  # what WeCom says to an id it no longer has (gone already: nothing to delete)


class GroupFlow:
    def __init__(self, client: WeComClient, sessions: SessionFactory, clock: Callable[[], datetime]):
        self._client = client
        self._sessions = sessions
        self._clock = clock

    async def welcome(self, message: OutboundMessage) -> SendResult:
        async with self._sessions() as session:
            row = await welcome_by_key(session, message.recipient)
        if row is None:
            return SendResult.sent("gone")
        try:
            template_id = await self._make_welcome_true(row.sync_status, row.template_id, content_of(row))
        except WeComApiError as error:
            await self._note_welcome(message.recipient, None, f"errcode {error.errcode}: {error.errmsg}")
            raise
        await self._note_welcome(message.recipient, template_id, None)
        return SendResult.sent(template_id or "deleted")

    async def _make_welcome_true(self, status: str, template_id: str | None, welcome: WelcomeContent) -> str | None:
        if status == "deleting":
            if template_id:
                try:
                    await api.delete_template(self._client, template_id)
                except WeComApiError as error:
                    if error.errcode != NOT_FOUND:
                        raise
            return None
        if template_id:
            await api.edit_template(self._client, template_id, welcome)
            return template_id
        return await api.add_template(self._client, welcome)

    async def _note_welcome(self, key: str, template_id: str | None, problem: str | None) -> None:
        async with self._sessions() as session, session.begin():
            row = await welcome_by_key(session, key)
            if await _settled(session, row, problem):
                assert row is not None
                row.template_id, row.synced_at = template_id, self._clock()

    async def join_way(self, message: OutboundMessage) -> SendResult:
        async with self._sessions() as session:
            row = await session.get(JoinWay, message.recipient)
        if row is None:
            return SendResult.sent("gone")
        way = api.JoinWay(json.loads(row.chat_ids), row.channel, remark=row.channel,
                          auto_create_room=row.room_name is not None, room_base_name=row.room_name or "")
        try:
            if row.sync_status == "deleting":
                if row.config_id:
                    await api.delete_join_way(self._client, row.config_id)
                config_id, qr_code = None, None
            else:
                config_id = row.config_id
                if config_id:
                    await api.update_join_way(self._client, config_id, way)
                else:
                    config_id = await api.add_join_way(self._client, way)
                qr_code = await api.join_way_qr_code(self._client, config_id)
        except WeComApiError as error:
            await self._note_join_way(row.channel, None, None, f"errcode {error.errcode}: {error.errmsg}")
            raise
        await self._note_join_way(row.channel, config_id, qr_code, None)
        return SendResult.sent(config_id or "deleted")

    async def _note_join_way(self, channel: str, config_id: str | None, qr_code: str | None, problem: str | None) -> None:
        async with self._sessions() as session, session.begin():
            row = await session.get(JoinWay, channel)
            if await _settled(session, row, problem):
                assert row is not None
                row.config_id, row.qr_code = config_id, qr_code


async def _settled(session: AsyncSession, row: GroupWelcome | JoinWay | None, problem: str | None) -> bool:
    """Note WeCom's answer on our row: whether it is now in step (the caller then keeps
    WeCom's ids). A deleted one goes; a failed delete stays a delete, to be tried again."""
    if row is None:
        return False
    if problem is not None:
        row.sync_error = problem
        row.sync_status = row.sync_status if row.sync_status == "deleting" else "failed"
    elif row.sync_status == "deleting":
        await session.delete(row)
        return False
    else:
        row.sync_status, row.sync_error = "synced", None
    session.add(row)
    return problem is None
