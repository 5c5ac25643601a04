"""Delivery to WeCom: outbox rows into API calls, API answers into send results.

Routes: "message" (a prompt to staff by app message — a text card opening the task
page when the prompt carries a console link and the console is served, else text — or a
reply to a member through WeChat Customer Service), "welcome" (the new-contact greeting), the requests
"profile", "group" and "pull" whose answers are written into our storage, and, when tag
sync is on, "mark_tag" (our tags onto the customer as corp tags) and "corp_tags" (WeCom's
renamed and deleted corp tags into ours); "mass_send" (a content-calendar mass send a
staff member confirms in WeCom; the customers WeCom left out are noted on the row); and a
calendar's Moments post: "moment_task", "moment_result", "moment_read" (moments_flow.py);
group welcome templates and channels' join ways: "group_welcome", "join_way" (group_flow.py);
the console's bulk transfer to a colleague (在职继承): "transfer_customer" (transfers.py).
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.platforms.wecom import kf
from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.contacts import ChannelJoin, apply_contact, apply_group, earliest
from bot.platforms.wecom.corp_tags import CorpTags, TagName, TagNameTooLong, too_long
from bot.platforms.wecom.errors import WeComApiError, WeComRateLimited, WeComTransportError, outcome_unknown
from bot.platforms.wecom.group_flow import GroupFlow
from bot.platforms.wecom.mass_attachments import wire_attachments
from bot.platforms.wecom.mass_lookup import find_mass_send
from bot.platforms.wecom.moments_flow import MomentsFlow
from bot.platforms.wecom.outcomes import reply_window_refusal, result_for
from bot.platforms.wecom.transfers import transfer_customers
from bot.platforms.wecom.updates import PLATFORM
from bot.settings.model import ChannelSettings
from bot.shared.prompt_links import LinkBuilder, no_links, prompt_url
from handlers.contact_events import CHANNEL_TAG_GROUP
from handlers.updates import to_payload
from scheduler.delivery import OutboundMessage, SendResult
from storage.calendar import record_mass_send
from storage.cursors import load_cursor, save_cursor
from storage.engine import SessionFactory
from storage.inbox import InboxWriter, NewInboxEntry
from storage.members import member_by_identity, store_and_owner
from storage.models import Member, utcnow
from storage.outbox import UNKNOWN_OUTCOME, NewOutboxMessage, enqueue

log = logging.getLogger(__name__)
ALREADY_GREETED = 41051
INVALID_TAG_ID = 40068
SYNC_OFF = "tag sync with WeCom is off (platforms.wecom.tag_sync_group is not set): corp tags are not marked"
# message/send textcard limits (WECOM.md §4.2): WeCom cuts longer titles and descriptions
# at a byte count, which may split a character, so we cut first, between characters.
CARD_TITLE_BYTES, CARD_DESCRIPTION_BYTES, CARD_URL_BYTES = 128, 512, 2048
CARD_BUTTON = "去处理"  # at most 4 characters
ELLIPSIS = "…"


class WeComSender:
    def __init__(
        self,
        client: WeComClient,
        sessions: SessionFactory,
        agent_id: int,
        inbox: Callable[[], InboxWriter],
        clock: Callable[[], datetime] = utcnow,
        tag_sync_group: str | None = None,
        links: LinkBuilder = no_links,
        channels: Mapping[str, ChannelSettings] | None = None,
        outcome_scheme: str = "value",
    ):
        self._client = client
        self._sessions = sessions
        self._agent_id = agent_id
        self._inbox = inbox
        self._clock = clock
        self._links = links
        self.corp_tags = CorpTags(client, sessions, tag_sync_group) if tag_sync_group else None
        self.moments = MomentsFlow(client, sessions, self.corp_tags, clock, outcome_scheme)
        self.groups = GroupFlow(client, sessions, clock)
        self._channels = channels

    async def send(self, message: OutboundMessage) -> SendResult:
        try:
            match message.route:
                case "message" if message.kind == "staff_prompt":
                    return await self._prompt_staff(message)
                case "message":
                    return await self._reply_to_member(message)
                case "welcome":
                    return await self._welcome(message)
                case "profile":
                    read_at = self._clock()
                    detail = await self._client.get_external_contact(message.recipient)
                    async with self._sessions() as session, session.begin():
                        await apply_contact(
                            session, detail["external_contact"], detail.get("follow_user", []), self._clock(),
                            read_at=read_at if self.corp_tags is not None else None,
                        )
                    return SendResult.sent()
                case "group":
                    chat = await self._client.groupchat_get(message.recipient)
                    async with self._sessions() as session, session.begin():
                        joined = await apply_group(session, chat.get("group_chat", chat), self._clock(), self._channels or {})
                        await self._sync_channel_tags(session, joined)
                    return SendResult.sent()
                case "pull":
                    pulled = await self._pull(message.recipient.removeprefix("kf:"), str(message.meta.get("token", "")))
                    return SendResult.sent(f"{pulled} messages")
                case "mark_tag":
                    return await self._mark_tags(message)
                case "mass_send":
                    return await self._mass_send(message)
                case "moment_task":
                    return await self.moments.post(message)
                case "moment_result":
                    return await self.moments.follow_job(message)
                case "moment_read":
                    return await self.moments.read_back(message)
                case "group_welcome":
                    return await self.groups.welcome(message)
                case "join_way":
                    return await self.groups.join_way(message)
                case "transfer_customer":
                    return await transfer_customers(self._client, self._sessions, message)
                case "corp_tags":
                    if self.corp_tags is None:
                        return SendResult.sent("tag sync off: corp tag list not read")
                    return SendResult.sent(str(await self.corp_tags.apply_list()))
            return SendResult.failed(f"WeCom cannot deliver route {message.route!r}")
        except (WeComApiError, WeComRateLimited, WeComTransportError) as error:
            return result_for(error)

    async def _sync_channel_tags(self, session: Any, joined: list[ChannelJoin]) -> None:
        """Channel tags given for joining a group through its QR code, marked as corp tags."""
        if self.corp_tags is None:
            return
        now = self._clock()
        rows = [NewOutboxMessage(
            f"tags:join:{j.member_id}:{j.channel}:{now.isoformat()}", PLATFORM, j.external_userid, "request", "", member_id=j.member_id,
            route="mark_tag", meta=json.dumps({"add": [[CHANNEL_TAG_GROUP, t] for t in j.tags], "remove": []},
                                              ensure_ascii=False),
        ) for j in joined if j.tags]
        await enqueue(session, rows, now)

    async def _prompt_staff(self, message: OutboundMessage) -> SendResult:
        url = prompt_url(message.meta, message.recipient, self._links)
        card = text_card(message.body, str(message.meta.get("title") or ""), url) if url else None
        if card is None:
            result = await self._client.send_text_to_staff(message.recipient, self._agent_id, message.body)
        else:
            result = await self._client.send_textcard_to_staff(
                message.recipient, self._agent_id, card.title, card.description, card.url, card.button
            )
        if result.invalid_users:
            return SendResult.failed(f"not a WeCom user of this app: {', '.join(result.invalid_users)}")
        return SendResult.sent(result.msgid)

    async def _reply_to_member(self, message: OutboundMessage) -> SendResult:
        conversation = str(message.meta.get("conversation") or "")
        if not conversation.startswith("kf:"):
            # Customer contacts are reached by staff (mass sends they confirm), never
            # directly by the app: only Customer Service conversations take replies.
            return SendResult.failed("no WeChat Customer Service conversation to reply in")
        if problem := await reply_window_refusal(self._sessions, message.member_id, PLATFORM, self._clock()):
            return SendResult.failed(problem)
        # Our own msgid makes a retried send one message on the member's phone.
        msgid = await self._client.kf_send_text(
            message.recipient, conversation.removeprefix("kf:"), message.body, msgid=f"siyu{message.id}"
        )
        return SendResult.sent(msgid)

    async def _welcome(self, message: OutboundMessage) -> SendResult:
        # One try that ends by the code's deadline; delivery retries within it. Sending
        # again after a lost answer is safe: the code is single-use (41051 the second time).
        left = (message.deadline - self._clock()).total_seconds() if message.deadline else None
        try:
            await self._client.send_welcome_msg(str(message.meta["welcome_code"]), message.body, left)
        except WeComApiError as error:
            if error.errcode == ALREADY_GREETED:
                return SendResult.sent("already greeted")  # delivered before, or she chatted first
            raise
        return SendResult.sent()

    async def _mass_send(self, message: OutboundMessage) -> SendResult:
        """add_msg_template from the staff member the row is addressed to. An empty list
        would mean "all her customers" to WeCom: never sent."""
        chat_type = str(message.meta.get("chat_type") or "single")
        key = "chat_id_list" if chat_type == "group" else "external_userid"
        targets = message.meta.get(key)
        if not isinstance(targets, list) or not targets or not all(isinstance(t, str) and t for t in targets):
            return SendResult.failed(f"mass_send row without its {key} list: nothing sent")
        if UNKNOWN_OUTCOME in message.last_error:
            # An earlier try may have created the task: look before creating another.
            found = await find_mass_send(self._client, self._sessions, message, chat_type, self._clock())
            if found is not None:
                async with self._sessions() as session, session.begin():
                    await record_mass_send(session, message.id, found, ())
                log.info("mass send %s was created by an earlier try (%s): not sent again", message.dedupe_key, found)
                return SendResult.sent(found)
        try:
            attachments = await wire_attachments(self._client, message.meta.get("attachments") or {})
            result = await self._client.add_msg_template(
                message.recipient, message.body, chat_type=chat_type,
                external_userids=targets if key == "external_userid" else (),
                chat_ids=targets if key == "chat_id_list" else (), attachments=attachments,
            )
        except FileNotFoundError as error:  # an image removed from the media folder since the entry was saved
            return SendResult.failed(f"attachment file missing: {error.filename}")
        except ValueError as error:
            return SendResult.failed(str(error))
        except WeComTransportError as error:
            if not outcome_unknown(error):
                raise
            return SendResult.retry(f"{UNKNOWN_OUTCOME}: {error}; looked up before any retry", code="unknown_outcome")
        async with self._sessions() as session, session.begin():
            await record_mass_send(session, message.id, result.msgid, result.fail_list)
        if result.fail_list:
            log.info("mass send %s: WeCom left out %d of %d", message.dedupe_key, len(result.fail_list), len(targets))
        return SendResult.sent(result.msgid)

    async def _mark_tags(self, message: OutboundMessage) -> SendResult:
        if self.corp_tags is None:
            return SendResult.failed(SYNC_OFF)
        try:
            add, remove = _tag_names(message.meta, "add"), _tag_names(message.meta, "remove")
        except ValueError as error:
            return SendResult.failed(str(error))
        if problem := too_long(add):
            return SendResult.failed(str(problem))  # before any call: nothing half done
        userid = await self._staff_of(message)
        if userid is None:
            return SendResult.failed(f"no staff member has {message.recipient} as a customer: nobody to mark tags as")
        try:
            add_ids = await self.corp_tags.ids_for(add, create=True)
            remove_ids = [i for i in await self.corp_tags.ids_for(remove, create=False) if i not in add_ids]
        except TagNameTooLong as error:
            return SendResult.failed(str(error))
        if not add_ids and not remove_ids:
            return SendResult.sent("no corp tag to add or remove")
        try:
            await self._client.mark_tag(userid, message.recipient, add_ids, remove_ids)
        except WeComApiError as error:
            if error.errcode != INVALID_TAG_ID:
                raise
            # A corp tag deleted since we read the list: read it again and resolve anew.
            self.corp_tags.forget()
            return SendResult.retry(f"errcode {error.errcode}: {error.errmsg}")
        return SendResult.sent()

    async def _staff_of(self, message: OutboundMessage) -> str | None:
        """Whose customer she is for mark_tag: her owner, else the staff member who added her first."""
        async with self._sessions() as session:
            member = (
                await session.get(Member, message.member_id) if message.member_id is not None
                else await member_by_identity(session, PLATFORM, message.recipient)
            )
            _, owner = await store_and_owner(session, member) if member is not None else (None, None)
        if owner is not None:
            return owner.userid
        detail = await self._client.get_external_contact(message.recipient)
        first = earliest(detail.get("follow_user") or [])
        return str(first["userid"]) if first is not None else None

    async def _pull(self, open_kfid: str, token: str) -> int:
        """Pull every waiting Customer Service message into the inbox, then move the cursor."""
        name, pulled = kf.cursor_name(open_kfid), 0
        async with self._sessions() as session:
            cursor = await load_cursor(session, name)
        while True:
            page = await self._client.kf_sync_msg(token, cursor, open_kfid)
            updates = [u for u in map(kf.to_update, page.messages) if u is not None]
            # One gather: the inbox commits the page in one batch.
            await asyncio.gather(
                *(self._inbox().add(NewInboxEntry(u.key, PLATFORM, u.sender, to_payload(u))) for u in updates)
            )
            pulled += len(updates)
            cursor = page.next_cursor or cursor
            async with self._sessions() as session, session.begin():
                await save_cursor(session, name, cursor, self._clock())
            if not page.has_more:
                return pulled


def _tag_names(meta: Mapping[str, Any], key: str) -> list[TagName]:
    """[[group, name], …] from a mark_tag row's meta."""
    names: list[TagName] = []
    for item in meta.get(key) or ():
        if not (isinstance(item, list | tuple) and len(item) == 2 and all(isinstance(part, str) for part in item)):
            raise ValueError(f"mark_tag meta {key!r} holds {item!r}, not a [group, name] pair")
        if not item[1]:
            raise ValueError(f"mark_tag meta {key!r} holds a tag without a name")
        names.append((item[0], item[1]))
    return names


# -- text cards (pure) ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TextCard:
    title: str
    description: str  # WeCom reads it as a little HTML (<br>, <div class="gray">…)
    url: str
    button: str = CARD_BUTTON


def text_card(body: str, title: str, url: str) -> TextCard | None:
    """The prompt as a card within WeCom's limits; None when the URL is too long for one."""
    if len(url.encode()) > CARD_URL_BYTES:
        return None
    lines = [line.rstrip() for line in body.strip().splitlines() if line.strip()]
    heading = title.strip() or (lines[0] if lines else "") or CARD_BUTTON
    description = card_description(lines or [heading], CARD_DESCRIPTION_BYTES)  # WeCom wants one
    return TextCard(cut_utf8(heading, CARD_TITLE_BYTES), description, url)


def cut_utf8(text: str, limit: int) -> str:
    """`text` in at most `limit` UTF-8 bytes, cut between characters, "…" marking a cut."""
    data = text.encode()
    if len(data) <= limit:
        return text
    # Bytes of a character split at the end are dropped whole by "ignore".
    return data[:limit - len(ELLIPSIS.encode())].decode("utf-8", "ignore") + ELLIPSIS


def card_description(lines: list[str], limit: int) -> str:
    """Lines as a card description: escaped (a customer's "<" is text, not markup), joined
    by <br>, and cut to `limit` bytes between characters, never inside an escape."""
    pieces: list[str] = []
    for n, line in enumerate(lines):
        if n:
            pieces.append("<br>")
        pieces.extend(html.escape(ch, quote=False) for ch in line)
    sizes = [len(piece.encode()) for piece in pieces]
    if sum(sizes) <= limit:
        return "".join(pieces)
    room, kept = limit - len(ELLIPSIS.encode()), []
    for piece, size in zip(pieces, sizes, strict=True):
        if size > room:
            break
        kept.append(piece)
        room -= size
    while kept and kept[-1] in ("<br>", " "):
        kept.pop()
    return "".join(kept) + ELLIPSIS
