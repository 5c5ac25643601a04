"""Clients for the WeCom server API and the official account's customer-service API.

Both share one machinery (`TokenedApi`): an access_token cached per app secret and
fetched single-flight, tenacity retries for what WECOM.md §4.10 calls transient, and a
token refresh on the token error codes. Every call goes through the one aiohttp session
the caller owns. Tokens travel in the query string, so URLs are never logged or put in
an exception: only the API path is.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_random_exponential
from tenacity.wait import WaitBaseT

from bot.platforms.wecom.errors import (
    TOKEN_CODES,
    WeComApiError,
    WeComRateLimited,
    WeComTransportError,
    is_refused_transiently,
    is_transient,
)
from bot.platforms.wecom.ratelimit import APP_MESSAGE_LIMITS, ProcessSendLimits, SendLimits, WindowLimiter
from bot.platforms.wecom.shared_values import Fetched, SharedValues

log = logging.getLogger(__name__)

DEFAULT_WAIT: WaitBaseT = wait_random_exponential(multiplier=0.5, max=10.0)
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=10)
# Refresh this long before WeCom says the token expires, so a call never races expiry.
TOKEN_MARGIN = 300.0
MAX_DUPLICATE_CHECK = 4 * 3600
MASS_TEXT_BYTES = 4000  # add_msg_template text.content, at most
MASS_CUSTOMERS = 10_000  # add_msg_template external_userid, at most
MASS_ATTACHMENTS = 9  # add_msg_template attachments, at most
MASS_CHATS = 2_000  # add_msg_template chat_id_list, at most  # WeCom's ceiling for duplicate_check_interval
BATCH_USERIDS = 100  # batch/get_by_user takes at most 100 userids and 100 per page
TRANSFER_CUSTOMERS = 100  # transfer_customer: external_userid, at most
TRANSFER_MESSAGE_CHARS = 200  # transfer_customer: transfer_success_msg, at most
_CREDENTIAL_IN_TEXT = re.compile(r"((?:access_token|corpsecret|secret)=)[^&\s'\"]+", re.IGNORECASE)

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Upload:
    """A file sent as multipart form data (media uploads)."""

    filename: str
    content: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class _CachedToken:
    value: str
    refresh_at: float


@dataclass(frozen=True, slots=True)
class StaffMessageResult:
    msgid: str
    invalid_users: tuple[str, ...]  # lower-cased by WeCom; the others were sent


@dataclass(frozen=True, slots=True)
class MassSendResult:
    msgid: str  # for get_groupmsg_task / get_groupmsg_send_result
    fail_list: tuple[str, ...]  # customers WeCom could not include (not a customer, invalid id…)


@dataclass(frozen=True, slots=True)
class ContactPage:
    contacts: list[Json]  # {external_contact, follow_info}
    next_cursor: str  # "" on the last page


@dataclass(frozen=True, slots=True)
class KfSyncPage:
    messages: list[Json]
    next_cursor: str  # persist it: the next sync starts here
    has_more: bool


class TokenedApi:
    """Token cache, retries and redaction; subclasses say how to ask for a token."""

    token_path: str = ""
    # Codes that mean "this access_token is no good" on a regular call.
    token_codes: frozenset[int] = TOKEN_CODES

    def __init__(
        self,
        http: aiohttp.ClientSession,
        api_base: str,
        secret: str,
        *,
        name: str,
        clock: Callable[[], float] = time.monotonic,
        retry_wait: WaitBaseT = DEFAULT_WAIT,
        attempts: int = 4,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        values: SharedValues | None = None,
    ):
        """`values`: where the access token is kept for every process (None: this one's)."""
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._http = http
        self._base = api_base.rstrip("/")
        self._secret = secret
        self.name = name
        self._clock = clock
        self._retry_wait = retry_wait
        self._attempts = attempts
        self._timeout = timeout
        self._token: _CachedToken | None = None
        self._token_lock = asyncio.Lock()
        self._values = values
        # The token's name in the shared store: one per app secret, the secret itself hashed.
        self._token_name = f"{name}:token:{hashlib.sha256(secret.encode()).hexdigest()[:12]}"
        self.tokens_fetched = 0

    def _token_query(self) -> dict[str, str]:
        raise NotImplementedError

    async def access_token(self) -> str:
        """The cached token, fetched once however many callers want it at the same time."""
        cached = self._token
        if cached is not None and self._clock() < cached.refresh_at:
            return cached.value
        async with self._token_lock:
            cached = self._token
            if cached is not None and self._clock() < cached.refresh_at:
                return cached.value
            if self._values is None:
                value, lifetime = await self._fetch_token()
            else:  # another process may hold a fresh one; else we fetch, the others wait
                value, left = await self._values.fetch(self._token_name, self._fetch_token, TOKEN_MARGIN)
                lifetime = int(left)
            # Short-lived tokens (tests, odd proxies) still get used for half their life.
            margin = min(TOKEN_MARGIN, lifetime / 2)
            self._token = _CachedToken(value, self._clock() + lifetime - margin)
            return value

    async def _fetch_token(self) -> Fetched:
        data = self._checked(self.token_path, await self._request("GET", self.token_path, self._token_query()))
        value, lifetime = data.get("access_token"), data.get("expires_in")
        if not isinstance(value, str) or not value or not isinstance(lifetime, int) or lifetime <= 0:
            raise WeComTransportError(self.token_path, "token answer lacks access_token/expires_in", retryable=False)
        self.tokens_fetched += 1
        log.info("%s: fetched an access_token valid for %ds", self.name, lifetime)
        return value, lifetime

    def forget_token(self, used: str | None = None) -> None:
        """Drop the cached token — only if it is still `used`, so concurrent failures refetch once."""
        if self._token is not None and (used is None or self._token.value == used):
            self._token = None

    async def call(
        self, method: str, path: str, *, query: Mapping[str, str] | None = None, body: Json | None = None,
        files: Mapping[str, Upload] | None = None, attempts: int | None = None,
        timeout: aiohttp.ClientTimeout | None = None, idempotent: bool = True,
    ) -> Json:
        """One API call with the retry policy; returns the parsed answer (errcode 0).
        `files` are posted as multipart form data instead of a JSON body. A call that is
        not `idempotent` (it creates something, and the platform has no idempotency key)
        is retried only after a refusal (an errcode: nothing was done), never after a
        timeout or a lost answer: the caller learns the outcome is unknown and decides."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts or self._attempts),
            wait=self._retry_wait,
            retry=retry_if_exception(is_transient if idempotent else is_refused_transiently),
            before_sleep=self._log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._call_once(method, path, dict(query or {}), body, files, timeout)
        raise AssertionError("tenacity ended without a result or an error")  # pragma: no cover

    async def _call_once(
        self, method: str, path: str, query: dict[str, str], body: Json | None,
        files: Mapping[str, Upload] | None = None, timeout: aiohttp.ClientTimeout | None = None,
    ) -> Json:
        token = await self.access_token()
        data = await self._request(method, path, {**query, "access_token": token}, body, files, timeout)
        if self._errcode(data) in self.token_codes:
            # Invalidated early (secret reset, another process refetched): one refetch, one retry.
            log.info("%s: %s rejected the access_token (errcode %s); fetching a new one", self.name, path, self._errcode(data))
            self.forget_token(token)
            if self._values is not None:
                await self._values.forget(self._token_name, token)
            token = await self.access_token()
            data = await self._request(method, path, {**query, "access_token": token}, body, files, timeout)
        return self._checked(path, data)

    async def _request(
        self, method: str, path: str, query: Mapping[str, str], body: Json | None = None,
        files: Mapping[str, Upload] | None = None, timeout: aiohttp.ClientTimeout | None = None,
    ) -> Json:
        failure = ""
        payload: dict[str, Any] = {"json": body}
        if files:  # a form is read once: built anew for every attempt
            form = aiohttp.FormData()
            for field, upload in files.items():
                form.add_field(field, upload.content, filename=upload.filename, content_type=upload.content_type)
            payload = {"data": form}
        try:
            async with self._http.request(
                method, self._base + path, params=query, timeout=timeout or self._timeout, **payload
            ) as response:
                status = response.status
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            failure = self._redact(f"{type(error).__name__}: {error}".rstrip(": "))
        if failure:
            # Raised outside the except block: aiohttp's exceptions may carry the URL (and
            # the token in it), so they must not ride along as __context__ into tracebacks.
            raise WeComTransportError(path, failure)
        if status != 200:
            raise WeComTransportError(path, f"HTTP {status}", retryable=status >= 500 or status == 429, status=status)
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise WeComTransportError(path, "answer is not a JSON object")
        return data

    def _checked(self, path: str, data: Json) -> Json:
        errcode = self._errcode(data)
        if errcode != 0:
            raise WeComApiError(errcode, self._redact(str(data.get("errmsg", ""))), path)
        return data

    @staticmethod
    def _errcode(data: Json) -> int:
        # The official account omits errcode on success (e.g. its token answer).
        try:
            return int(data.get("errcode", 0))
        except (TypeError, ValueError):
            return -1

    def _redact(self, text: str) -> str:
        for credential in (self._secret, self._token.value if self._token else ""):
            if len(credential) >= 8:  # real ones are far longer; a stub of "s" would shred the text
                text = text.replace(credential, "***")
        return _CREDENTIAL_IN_TEXT.sub(r"\1***", text)

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s: attempt %d of %d failed (%s); retrying in %.2fs",
            self.name, state.attempt_number, self._attempts, error, delay,
        )


class WeComClient(TokenedApi):
    """One app of one corp (one secret, one token). `staff_limits` guards app messages
    to members against WeCom's silent drops; None turns the guard off."""

    token_path = "/cgi-bin/gettoken"

    def __init__(
        self,
        http: aiohttp.ClientSession,
        api_base: str,
        corp_id: str,
        secret: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        retry_wait: WaitBaseT = DEFAULT_WAIT,
        attempts: int = 4,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        staff_limits: Sequence[tuple[int, float]] | None = APP_MESSAGE_LIMITS,
        send_limits: SendLimits | None = None,
        values: SharedValues | None = None,
    ):
        """`send_limits`: where sends to staff are counted (the database's when several
        processes send); by default this process counts `staff_limits` alone."""
        super().__init__(
            http, api_base, secret, name=f"wecom:{corp_id}",
            clock=clock, retry_wait=retry_wait, attempts=attempts, timeout=timeout, values=values,
        )
        self.corp_id = corp_id
        self.staff_limiter = send_limits or (ProcessSendLimits(WindowLimiter(staff_limits, clock)) if staff_limits else None)

    def _token_query(self) -> dict[str, str]:
        return {"corpid": self.corp_id, "corpsecret": self._secret}

    # -- app messages to staff (§4.2) --------------------------------------------------

    async def send_text_to_staff(
        self, userids: str | Sequence[str], agent_id: int, content: str, duplicate_check_seconds: int = 1800
    ) -> StaffMessageResult:
        return await self._send_app_message(
            userids, agent_id, {"msgtype": "text", "text": {"content": content}}, duplicate_check_seconds
        )

    async def send_textcard_to_staff(
        self,
        userids: str | Sequence[str],
        agent_id: int,
        title: str,
        description: str,
        url: str,
        btntxt: str = "详情",
        duplicate_check_seconds: int = 1800,
    ) -> StaffMessageResult:
        card = {"title": title, "description": description, "url": url, "btntxt": btntxt}
        return await self._send_app_message(
            userids, agent_id, {"msgtype": "textcard", "textcard": card}, duplicate_check_seconds
        )

    async def _send_app_message(
        self, userids: str | Sequence[str], agent_id: int, payload: Json, duplicate_check_seconds: int
    ) -> StaffMessageResult:
        users = [userids] if isinstance(userids, str) else list(userids)
        if not users:
            raise ValueError("no recipients")
        if not 0 <= duplicate_check_seconds <= MAX_DUPLICATE_CHECK:
            raise ValueError(f"duplicate_check_seconds must be within 0..{MAX_DUPLICATE_CHECK}")
        await self._reserve_staff_sends(agent_id, users)
        body: Json = {"touser": "|".join(users), "agentid": agent_id, **payload}
        if duplicate_check_seconds:
            # Our retries resend the identical body, so WeCom delivers it once.
            body["enable_duplicate_check"] = 1
            body["duplicate_check_interval"] = duplicate_check_seconds
        data = await self.call("POST", "/cgi-bin/message/send", body=body)
        invalid = tuple(user for user in str(data.get("invaliduser", "")).split("|") if user)
        return StaffMessageResult(str(data.get("msgid", "")), invalid)

    async def _reserve_staff_sends(self, agent_id: int, users: Sequence[str]) -> None:
        # Counted before sending (not after) so concurrent sends cannot overshoot.
        if self.staff_limiter is None:
            return
        keys = [f"wecom:{self.corp_id}:{agent_id}:{user.lower()}" for user in users]
        if (wait := await self.staff_limiter.reserve(keys)) > 0:
            raise WeComRateLimited("/cgi-bin/message/send", ",".join(keys), wait)

    # -- customers (§4.4–4.8) ----------------------------------------------------------

    async def send_welcome_msg(self, welcome_code: str, text: str, time_left: float | None = None) -> Json:
        """Valid once, within 20 s of the event; 41051 means it was already delivered.
        With `time_left`, one try that gives up by then: the caller retries within it."""
        if time_left is None:
            return await self.call(
                "POST", "/cgi-bin/externalcontact/send_welcome_msg",
                body={"welcome_code": welcome_code, "text": {"content": text}},
            )
        return await self.call(
            "POST", "/cgi-bin/externalcontact/send_welcome_msg",
            body={"welcome_code": welcome_code, "text": {"content": text}},
            attempts=1, timeout=aiohttp.ClientTimeout(total=max(min(time_left, DEFAULT_TIMEOUT.total or 10), 0.1)),
        )

    async def add_msg_template(
        self,
        sender: str,
        text: str,
        *,
        chat_type: str = "single",
        external_userids: Sequence[str] = (),
        chat_ids: Sequence[str] = (),
        attachments: Sequence[Json] = (),
    ) -> MassSendResult:
        """A mass send (企业群发, §4.3) from `sender` to her customers ("single") or her
        customer groups ("group"). Nothing reaches anyone until she confirms it in WeCom.
        There is no idempotency key: after a lost answer this call is not retried (a second
        task would reach her); the caller looks it up (`find_mass_send`) before trying again."""
        if chat_type not in ("single", "group"):
            raise ValueError("chat_type is single or group")
        if not text or len(text.encode("utf-8")) > MASS_TEXT_BYTES:
            raise ValueError(f"a mass send needs a text of 1..{MASS_TEXT_BYTES} bytes")
        if len(external_userids) > MASS_CUSTOMERS or len(chat_ids) > MASS_CHATS:
            raise ValueError(f"at most {MASS_CUSTOMERS} customers or {MASS_CHATS} groups per mass send")
        if len(attachments) > MASS_ATTACHMENTS:
            raise ValueError(f"at most {MASS_ATTACHMENTS} attachments per mass send")
        body: Json = {"chat_type": chat_type, "sender": sender, "text": {"content": text}}
        if attachments:
            body["attachments"] = list(attachments)
        if chat_type == "single":
            body["external_userid"] = list(external_userids)
        else:
            body["chat_id_list"] = list(chat_ids)
        data = await self.call("POST", "/cgi-bin/externalcontact/add_msg_template", body=body, idempotent=False)
        return MassSendResult(str(data.get("msgid", "")), tuple(str(u) for u in data.get("fail_list") or ()))

    async def list_mass_sends(self, start: int, end: int, chat_type: str = "single") -> list[Json]:
        """The corp's mass sends created between `start` and `end` (Unix seconds, at most a
        month apart): get_groupmsg_list_v2 with filter_type 0 (the enterprise's), page by page."""
        found: list[Json] = []
        cursor = ""
        while True:
            body: Json = {"chat_type": chat_type, "start_time": start, "end_time": end, "filter_type": 0, "limit": 100}
            if cursor:
                body["cursor"] = cursor
            data = await self.call("POST", "/cgi-bin/externalcontact/get_groupmsg_list_v2", body=body)
            found.extend(data.get("group_msg_list") or [])
            cursor = str(data.get("next_cursor") or "")
            if not cursor:
                return found

    async def mass_send_senders(self, msgid: str) -> list[str]:
        """The staff members a mass send went to for confirmation (get_groupmsg_task)."""
        senders: list[str] = []
        cursor = ""
        while True:
            body: Json = {"msgid": msgid, "limit": 1000}
            if cursor:
                body["cursor"] = cursor
            data = await self.call("POST", "/cgi-bin/externalcontact/get_groupmsg_task", body=body)
            senders.extend(str(t.get("userid", "")).lower() for t in data.get("task_list") or [])
            cursor = str(data.get("next_cursor") or "")
            if not cursor:
                return senders

    async def get_external_contact(self, external_userid: str) -> Json:
        """{external_contact, follow_user[], next_cursor} (§4.7)."""
        return await self.call("GET", "/cgi-bin/externalcontact/get", query={"external_userid": external_userid})

    async def list_external_contacts(self, userid: str) -> list[str]:
        data = await self.call("GET", "/cgi-bin/externalcontact/list", query={"userid": userid})
        return [str(item) for item in data.get("external_userid", [])]

    async def batch_get_by_user(self, userids: Sequence[str], cursor: str = "", limit: int = 100) -> ContactPage:
        if not 0 < len(userids) <= BATCH_USERIDS or not 0 < limit <= BATCH_USERIDS:
            raise ValueError(f"batch_get_by_user takes 1..{BATCH_USERIDS} userids and a limit of 1..{BATCH_USERIDS}")
        data = await self.call(
            "POST", "/cgi-bin/externalcontact/batch/get_by_user",
            body={"userid_list": list(userids), "cursor": cursor, "limit": limit},
        )
        return ContactPage(list(data.get("external_contact_list", [])), str(data.get("next_cursor", "")))

    async def iter_contacts_by_user(self, userids: Sequence[str], limit: int = 100) -> AsyncIterator[Json]:
        """Every (customer, follow_info) of these staff, following cursors page by page."""
        for start in range(0, len(userids), BATCH_USERIDS):
            chunk, cursor = userids[start : start + BATCH_USERIDS], ""
            while True:
                page = await self.batch_get_by_user(chunk, cursor, limit)
                for contact in page.contacts:
                    yield contact
                if not page.next_cursor:
                    break
                cursor = page.next_cursor

    async def groupchat_get(self, chat_id: str, need_name: bool = True) -> Json:
        data = await self.call(
            "POST", "/cgi-bin/externalcontact/groupchat/get", body={"chat_id": chat_id, "need_name": int(need_name)}
        )
        return dict(data.get("group_chat", {}))

    async def mark_tag(
        self, userid: str, external_userid: str, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> None:
        if not add and not remove:
            raise ValueError("mark_tag needs a tag to add or remove")
        await self.call(
            "POST", "/cgi-bin/externalcontact/mark_tag",
            body={"userid": userid, "external_userid": external_userid, "add_tag": list(add), "remove_tag": list(remove)},
        )

    async def upload_media(self, filename: str, content: bytes, content_type: str, kind: str = "image") -> str:
        """A temporary media file (media/upload, valid three days): its media_id, for a
        mass send's image or mini-program cover."""
        data = await self.call("POST", "/cgi-bin/media/upload", query={"type": kind},
                               files={"media": Upload(filename, content, content_type)})
        return str(data["media_id"])

    async def transfer_customer(
        self, handover: str, takeover: str, external_userids: Sequence[str], message: str = ""
    ) -> dict[str, int]:
        """在职继承: hand these customers of `handover` to `takeover`.
        WeCom's errcode for each customer: 0 means the transfer started (she moves in 24
        hours unless she refuses), anything else that she stays. Sent once: a second call
        for the same customers is refused per customer (already being transferred)."""
        if not handover or not takeover or handover == takeover:
            raise ValueError("transfer_customer needs two different staff members")
        if not 0 < len(external_userids) <= TRANSFER_CUSTOMERS:
            raise ValueError(f"transfer_customer takes 1..{TRANSFER_CUSTOMERS} customers per call")
        if len(message) > TRANSFER_MESSAGE_CHARS:
            raise ValueError(f"transfer_success_msg is at most {TRANSFER_MESSAGE_CHARS} characters")
        body: Json = {"handover_userid": handover, "takeover_userid": takeover, "external_userid": list(external_userids)}
        if message:
            body["transfer_success_msg"] = message
        data = await self.call("POST", "/cgi-bin/externalcontact/transfer_customer", body=body, idempotent=False)
        return {str(c.get("external_userid", "")): int(c.get("errcode", -1)) for c in data.get("customer") or ()}

    async def get_corp_tag_list(self, tag_ids: Sequence[str] = (), group_ids: Sequence[str] = ()) -> list[Json]:
        data = await self.call(
            "POST", "/cgi-bin/externalcontact/get_corp_tag_list",
            body={"tag_id": list(tag_ids), "group_id": list(group_ids)},
        )
        return list(data.get("tag_group", []))

    async def add_corp_tag(self, group_name: str, tags: Sequence[str], *, group_id: str | None = None) -> Json:
        """Adds to the group of that name (or id) if it exists; returns the tag_group."""
        body: Json = {"tag": [{"name": name} for name in tags]}
        body.update({"group_id": group_id} if group_id else {"group_name": group_name})
        data = await self.call("POST", "/cgi-bin/externalcontact/add_corp_tag", body=body)
        return dict(data.get("tag_group", {}))

    # -- WeChat Customer Service (§4.9) -------------------------------------------------

    async def kf_sync_msg(self, token: str, cursor: str, open_kfid: str, limit: int = 1000) -> KfSyncPage:
        body: Json = {"cursor": cursor, "token": token, "limit": limit, "open_kfid": open_kfid}
        data = await self.call("POST", "/cgi-bin/kf/sync_msg", body=body)
        return KfSyncPage(list(data.get("msg_list", [])), str(data.get("next_cursor", "")), bool(data.get("has_more")))

    async def kf_send_text(self, touser: str, open_kfid: str, content: str, msgid: str | None = None) -> str:
        """Pass our own `msgid` (≤32 of [0-9a-zA-Z_-]) so a retried send is not delivered twice."""
        body: Json = {"touser": touser, "open_kfid": open_kfid, "msgtype": "text", "text": {"content": content}}
        if msgid:
            body["msgid"] = msgid
        data = await self.call("POST", "/cgi-bin/kf/send_msg", body=body)
        return str(data.get("msgid", msgid or ""))


class OfficialAccountClient(TokenedApi):
    """The official account's customer-service messages (WECOM.md §5)."""

    token_path = "/cgi-bin/token"
    # On the official account 40001 on a regular call means "access_token invalid or not
    # latest" (on the token call itself it is a bad secret, and that is never retried).
    token_codes = TOKEN_CODES | {40001}

    def __init__(
        self,
        http: aiohttp.ClientSession,
        api_base: str,
        app_id: str,
        secret: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        retry_wait: WaitBaseT = DEFAULT_WAIT,
        attempts: int = 4,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        values: SharedValues | None = None,
    ):
        super().__init__(
            http, api_base, secret, name=f"oa:{app_id}",
            clock=clock, retry_wait=retry_wait, attempts=attempts, timeout=timeout, values=values,
        )
        self.app_id = app_id

    def _token_query(self) -> dict[str, str]:
        return {"grant_type": "client_credential", "appid": self.app_id, "secret": self._secret}

    async def send_custom_text(self, openid: str, content: str) -> None:
        """Allowed for 48 h after the user's last message, 5 messages (45015 / 45047 otherwise).
        No idempotency key and no way to ask what was sent (WECOM.md §9.5): not retried after
        a lost answer; the caller decides whether to send again."""
        await self.call(
            "POST", "/cgi-bin/message/custom/send",
            body={"touser": openid, "msgtype": "text", "text": {"content": content}}, idempotent=False,
        )
