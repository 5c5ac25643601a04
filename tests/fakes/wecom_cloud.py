"""A fake WeCom (and official account) cloud: a real aiohttp server on 127.0.0.1.

Faithful to the wire protocol clients see: every answer is HTTP 200 JSON with `errcode`
and `errmsg` (unless a test asks for a 5xx or a dropped connection), access_token in the
query string, tokens that expire by the injected clock. Tests seed data and read what
reached a person through the state methods; faults are switched on per path.

Here: the conversation windows (WeChat Customer Service §4.9, official account §5) and
the HTTP front. The corp's directory and app messages live in wecom_state.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from secrets import token_hex, token_urlsafe
from typing import Any, Literal

from aiohttp import BodyPartReader, web

from tests.fakes.wecom_moments import MomentsAndGroups
from tests.fakes.wecom_staff_tools import StaffTools
from tests.fakes.wecom_transfers import Transfers
from tests.fakes.wecom_state import Delivery, Json, Refusal, WeComState, text_content

KF_TOKEN_TTL = 600.0
OA_TOKEN_OVERLAP = 300.0
KF_HISTORY = 3 * 86400.0
REPLY_WINDOW = 48 * 3600.0
REPLIES_PER_WINDOW = 5
_KF_MSGID = re.compile(r"[0-9A-Za-z_-]{1,32}")


@dataclass(slots=True)
class Window:
    opened_at: float
    sent: int = 0


class Conversations(WeComState):
    """Customers who write open a window for replies: 48 h and 5 messages, reset when they write again."""

    def __init__(self, clock: Callable[[], float] = time.time):
        super().__init__(clock)
        self.kf_accounts: set[str] = set()
        self.kf_messages: list[Json] = []
        self._kf_tokens: dict[str, tuple[str, float]] = {}
        self._kf_cursors: dict[str, int] = {}
        self._kf_windows: dict[tuple[str, str], Window] = {}
        self._kf_msgids: dict[tuple[str, str], str] = {}
        self._oa_windows: dict[str, Window] = {}
        self.oa_unionids: dict[str, str | None] = {}  # follower openid -> unionid

    def customer_writes(self, open_kfid: str, external_userid: str, text: str) -> str:
        """A customer writes to a kf account: returns the callback Token for sync_msg."""
        now = self.clock()
        self.kf_accounts.add(open_kfid)
        self.kf_messages.append({"msgid": self._new_id("kfmsg"), "open_kfid": open_kfid, "external_userid": external_userid,
                                 "send_time": int(now), "origin": 3, "msgtype": "text", "text": {"content": text}})
        self._kf_windows[(open_kfid, external_userid)] = Window(now)
        token = "ENC" + token_urlsafe(30)
        self._kf_tokens[token] = (open_kfid, now)
        return token

    def servicer_writes(self, open_kfid: str, external_userid: str, servicer_userid: str, text: str) -> str:
        """A servicer (a staff member) writes to a customer from WeCom: the message shows up
        in sync_msg with origin 5 and her userid; returns the callback Token. Messages the
        servicer sends by hand do not use the API's reply window."""
        now = self.clock()
        self.kf_accounts.add(open_kfid)
        self.kf_messages.append({"msgid": self._new_id("kfmsg"), "open_kfid": open_kfid, "external_userid": external_userid,
                                 "send_time": int(now), "origin": 5, "servicer_userid": servicer_userid,
                                 "msgtype": "text", "text": {"content": text}})
        token = "ENC" + token_urlsafe(30)
        self._kf_tokens[token] = (open_kfid, now)
        return token

    def user_writes(self, openid: str) -> None:
        """A user messages the official account: opens the customer-service window."""
        self._oa_windows[openid] = Window(self.clock())

    def add_follower(self, openid: str, unionid: str | None = None) -> None:
        self.oa_unionids[openid] = unionid

    def oa_user_info(self, app: str, query: Json, body: Json) -> Json:
        openid = str(query.get("openid", ""))
        if openid not in self.oa_unionids:
            raise Refusal(40003, "invalid openid")
        info: Json = {"subscribe": 1, "openid": openid, "language": "zh_CN", "subscribe_time": int(self.clock())}
        if self.oa_unionids[openid]:
            info["unionid"] = self.oa_unionids[openid]
        return info

    # -- WeChat Customer Service (§4.9) -------------------------------------------------

    def kf_sync_msg(self, app: str, query: Json, body: Json) -> Json:
        now = self.clock()
        open_kfid, token = body.get("open_kfid") or "", body.get("token") or ""
        limit = body.get("limit", 1000)
        if not isinstance(limit, int) or not 0 < limit <= 1000:
            raise Refusal(40058, "limit must be 1..1000")
        if open_kfid and open_kfid not in self.kf_accounts:
            raise Refusal(95000, "invalid open_kfid")
        if token:
            issued = self._kf_tokens.get(token)
            if issued is None or now - issued[1] > KF_TOKEN_TTL or (open_kfid and issued[0] != open_kfid):
                raise Refusal(95007, "invalid msg token")
        cursor = body.get("cursor") or ""
        start = self._kf_cursors.get(cursor) if cursor else 0
        if start is None:
            raise Refusal(40058, "invalid cursor")
        visible = [(seq, m) for seq, m in enumerate(self.kf_messages)
                   if seq >= start and (not open_kfid or m["open_kfid"] == open_kfid) and now - m["send_time"] <= KF_HISTORY]
        page = visible[:limit]
        position = page[-1][0] + 1 if page else max(start, len(self.kf_messages))
        next_cursor = token_urlsafe(12)
        self._kf_cursors[next_cursor] = position
        return {"errcode": 0, "errmsg": "ok", "next_cursor": next_cursor, "has_more": int(len(visible) > limit),
                "msg_list": [dict(m) for _, m in page]}

    def kf_send_msg(self, app: str, query: Json, body: Json) -> Json:
        touser, open_kfid, msgid = body.get("touser"), body.get("open_kfid"), body.get("msgid")
        if not touser or not open_kfid:
            raise Refusal(40058, "touser and open_kfid are required")
        if open_kfid not in self.kf_accounts:
            raise Refusal(95000, "invalid open_kfid")
        if body.get("msgtype") != "text":
            raise Refusal(40008, "invalid message type")
        text_content(body, 2048)
        if msgid is not None and (not isinstance(msgid, str) or not _KF_MSGID.fullmatch(msgid)):
            raise Refusal(40058, "invalid msgid")
        if msgid and (open_kfid, msgid) in self._kf_msgids:
            self.duplicates.append(Delivery("/cgi-bin/kf/send_msg", touser, body, self.clock(), open_kfid))
            return {"errcode": 0, "errmsg": "ok", "msgid": self._kf_msgids[(open_kfid, msgid)]}
        self._use_window(self._kf_windows.get((open_kfid, touser)),
                         Refusal(95018, "send msg session status invalid"), Refusal(95001, "send msg count limit"))
        msgid = msgid or self._new_id("kfsend")
        self._kf_msgids[(open_kfid, msgid)] = msgid
        self._deliver("/cgi-bin/kf/send_msg", touser, body, open_kfid)
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid}

    def _use_window(self, window: Window | None, out_of_time: Refusal, out_of_count: Refusal) -> None:
        if window is None or self.clock() - window.opened_at > REPLY_WINDOW:
            raise out_of_time
        if window.sent >= REPLIES_PER_WINDOW:
            raise out_of_count
        window.sent += 1

    # -- official account (§5) ----------------------------------------------------------

    def oa_callback_ips(self, app: str, query: Json, body: Json) -> Json:
        return {"ip_list": ["127.0.0.1"]}

    def oa_custom_send(self, app: str, query: Json, body: Json) -> Json:
        openid = body.get("touser")
        if not isinstance(openid, str) or not openid:
            raise Refusal(40003, "invalid openid")
        if body.get("msgtype") != "text":
            raise Refusal(40008, "invalid message type")
        text_content(body, 2048)
        self._use_window(self._oa_windows.get(openid),
                         Refusal(45015, "response out of time limit or subscription is canceled"),
                         Refusal(45047, "out of response count limit"))
        self._deliver("/cgi-bin/message/custom/send", openid, body, app)
        return {"errcode": 0, "errmsg": "ok"}


Handler = Callable[[Any, str, Json, Json], Json]
Audience = Literal["wecom", "oa"]

ROUTES: dict[str, tuple[str, Audience, Handler]] = {
    "/cgi-bin/message/send": ("POST", "wecom", WeComState.message_send),
    "/cgi-bin/externalcontact/send_welcome_msg": ("POST", "wecom", WeComState.send_welcome_msg),
    "/cgi-bin/externalcontact/add_msg_template": ("POST", "wecom", WeComState.add_msg_template),
    "/cgi-bin/externalcontact/get_groupmsg_list_v2": ("POST", "wecom", WeComState.get_groupmsg_list_v2),
    "/cgi-bin/externalcontact/get_groupmsg_task": ("POST", "wecom", WeComState.get_groupmsg_task),
    "/cgi-bin/externalcontact/get_groupmsg_send_result": ("POST", "wecom", WeComState.get_groupmsg_send_result),
    "/cgi-bin/externalcontact/get": ("GET", "wecom", WeComState.external_get),
    "/cgi-bin/externalcontact/list": ("GET", "wecom", WeComState.external_list),
    "/cgi-bin/externalcontact/get_follow_user_list": ("GET", "wecom", WeComState.follow_user_list),
    "/cgi-bin/externalcontact/batch/get_by_user": ("POST", "wecom", WeComState.batch_get_by_user),
    "/cgi-bin/externalcontact/groupchat/get": ("POST", "wecom", WeComState.groupchat_get),
    "/cgi-bin/externalcontact/mark_tag": ("POST", "wecom", WeComState.mark_tag),
    "/cgi-bin/externalcontact/get_corp_tag_list": ("POST", "wecom", WeComState.get_corp_tag_list),
    "/cgi-bin/externalcontact/add_corp_tag": ("POST", "wecom", WeComState.add_corp_tag),
    "/cgi-bin/externalcontact/transfer_customer": ("POST", "wecom", Transfers.transfer_customer),
    "/cgi-bin/auth/getuserinfo": ("GET", "wecom", StaffTools.getuserinfo),
    "/cgi-bin/get_jsapi_ticket": ("GET", "wecom", StaffTools.jsapi_ticket),
    "/cgi-bin/ticket/get": ("GET", "wecom", StaffTools.agent_ticket),
    "/cgi-bin/externalcontact/add_moment_task": ("POST", "wecom", MomentsAndGroups.add_moment_task),
    "/cgi-bin/externalcontact/get_moment_task_result": ("GET", "wecom", MomentsAndGroups.get_moment_task_result),
    "/cgi-bin/externalcontact/get_moment_task": ("POST", "wecom", MomentsAndGroups.get_moment_task),
    "/cgi-bin/externalcontact/get_moment_list": ("POST", "wecom", MomentsAndGroups.get_moment_list),
    "/cgi-bin/externalcontact/get_moment_comments": ("POST", "wecom", MomentsAndGroups.get_moment_comments),
    "/cgi-bin/externalcontact/get_moment_customer_list": ("POST", "wecom", MomentsAndGroups.get_moment_customer_list),
    "/cgi-bin/externalcontact/get_moment_send_result": ("POST", "wecom", MomentsAndGroups.get_moment_send_result),
    "/cgi-bin/externalcontact/group_welcome_template/add": ("POST", "wecom", MomentsAndGroups.welcome_add),
    "/cgi-bin/externalcontact/group_welcome_template/edit": ("POST", "wecom", MomentsAndGroups.welcome_edit),
    "/cgi-bin/externalcontact/group_welcome_template/get": ("POST", "wecom", MomentsAndGroups.welcome_get),
    "/cgi-bin/externalcontact/group_welcome_template/del": ("POST", "wecom", MomentsAndGroups.welcome_del),
    "/cgi-bin/externalcontact/groupchat/add_join_way": ("POST", "wecom", MomentsAndGroups.add_join_way),
    "/cgi-bin/externalcontact/groupchat/get_join_way": ("POST", "wecom", MomentsAndGroups.get_join_way),
    "/cgi-bin/externalcontact/groupchat/update_join_way": ("POST", "wecom", MomentsAndGroups.update_join_way),
    "/cgi-bin/externalcontact/groupchat/del_join_way": ("POST", "wecom", MomentsAndGroups.del_join_way),
    "/cgi-bin/kf/sync_msg": ("POST", "wecom", Conversations.kf_sync_msg),
    "/cgi-bin/kf/send_msg": ("POST", "wecom", Conversations.kf_send_msg),
    "/cgi-bin/message/custom/send": ("POST", "oa", Conversations.oa_custom_send),
    "/cgi-bin/user/info": ("GET", "oa", Conversations.oa_user_info),
    "/cgi-bin/getcallbackip": ("GET", "oa", Conversations.oa_callback_ips),
}
# On the official account an unknown token is 40001 "invalid credential"; WeCom says 40014.
_UNKNOWN_TOKEN = {
    "wecom": (40014, "invalid access_token"),
    "oa": (40001, "invalid credential, access_token is invalid or not latest"),
}
_HIDDEN_QUERY = {"corpsecret", "secret"}
_FAULT_MESSAGES = {
    -1: "system busy",
    6000: "data version conflict",
    45009: "api freq out of limit",
    45033: "api concurrent out of limit",
}


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    path: str
    query: dict[str, str]  # without access_token; secrets masked
    json: Any
    at: float


@dataclass(frozen=True, slots=True)
class _Token:
    audience: Audience
    app: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class _Fault:
    kind: Literal["fail", "slow", "late", "drop", "http"]
    errcode: int = 0
    errmsg: str = ""
    seconds: float = 0.0
    status: int = 502


def _answer(errcode: int, errmsg: str) -> Json:
    # Real errmsgs carry a hint and a link; clients must decide on errcode alone.
    hint = token_hex(6)
    return {"errcode": errcode, "errmsg": f"{errmsg}, hint: [{hint}], more info at "
            f"https://open.work.weixin.qq.com/devtool/query?e={errcode}"}


UPLOAD_PATH = "/cgi-bin/media/upload_attachment"
MEDIA_UPLOAD_PATH = "/cgi-bin/media/upload"  # temporary media (a mass send's images)
AUTHORIZE_PATH = "/connect/oauth2/authorize"


class FakeWeComCloud(Conversations, StaffTools, MomentsAndGroups, Transfers):
    def __init__(
        self, corp_id: str, secrets: Mapping[str, str], clock: Callable[[], float] = time.time, agent_id: int = 1000002
    ):
        super().__init__(clock)
        self.init_staff_tools(agent_id)
        self.init_moments()
        self.init_transfers()
        self.corp_id = corp_id
        self.secrets = dict(secrets)  # secret -> app name
        self.official_accounts: dict[str, str] = {}  # appid -> secret
        self.token_lifetime = 7200
        self.tokens: dict[str, _Token] = {}
        self.tokens_issued = 0
        self.calls: list[Call] = []
        self._faults: defaultdict[str, deque[_Fault]] = defaultdict(deque)
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        # When set, only these addresses may call (企业可信IP / the account's IP
        # whitelist): any other gets 60020 from WeCom, 40164 from the account.
        self.trusted_ips: set[str] | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # No access log: it would write URLs, tokens included.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.base_url

    async def close(self) -> None:
        self._closing.set()  # ends slow_next waits at once
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # -- what tests switch on and read ----------------------------------------------------

    def add_official_account(self, appid: str, secret: str) -> None:
        self.official_accounts[appid] = secret

    def expire_tokens(self) -> None:
        """Invalidate every issued token (as a secret reset does): 40014 from now on."""
        self.tokens.clear()

    def fail_next(self, path: str, errcode: int, times: int = 1, errmsg: str | None = None) -> None:
        errmsg = errmsg or _FAULT_MESSAGES.get(errcode, "fake failure")
        self._faults[path].extend(_Fault("fail", errcode=errcode, errmsg=errmsg) for _ in range(times))

    def slow_next(self, path: str, seconds: float, times: int = 1) -> None:
        """Answer (and act) only after `seconds` — a client with a shorter timeout gives up first."""
        self._faults[path].extend(_Fault("slow", seconds=seconds) for _ in range(times))

    def late_next(self, path: str, seconds: float, times: int = 1) -> None:
        """Act at once but answer only after `seconds`: a client that times out first never
        learns that the call was applied (what makes a blind retry send twice)."""
        self._faults[path].extend(_Fault("late", seconds=seconds) for _ in range(times))

    def drop_next(self, path: str, times: int = 1) -> None:
        self._faults[path].extend(_Fault("drop") for _ in range(times))

    def http_error_next(self, path: str, status: int = 502, times: int = 1) -> None:
        self._faults[path].extend(_Fault("http", status=status) for _ in range(times))

    def calls_to(self, path: str) -> list[Call]:
        return [call for call in self.calls if call.path == path]

    # -- the server -----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        response = await self._respond(request)
        # The platform's clock, as its HTTP Date header tells it (the injected clock).
        response.headers["Date"] = formatdate(self.clock(), usegmt=True)
        return response

    async def _respond(self, request: web.Request) -> web.StreamResponse:
        body: Any = None
        if request.path == AUTHORIZE_PATH:  # a browser, on open.weixin.qq.com
            self.calls.append(Call(request.method, request.path, dict(request.query), None, self.clock()))
            status, answer = self.authorize(dict(request.query))
            if status == 302:
                raise web.HTTPFound(answer)
            return web.Response(status=status, text=answer)
        if request.path in (UPLOAD_PATH, MEDIA_UPLOAD_PATH) and request.content_type == "multipart/form-data":
            return web.json_response(await self._upload(request))
        if request.method == "POST":
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = None
        query = {k: ("***" if k in _HIDDEN_QUERY else v) for k, v in request.query.items() if k != "access_token"}
        self.calls.append(Call(request.method, request.path, query, body, self.clock()))
        fault = self._faults[request.path].popleft() if self._faults[request.path] else None
        if fault is not None:
            if fault.kind == "drop":
                assert request.transport is not None
                request.transport.close()
                return web.Response()  # never reaches the client
            if fault.kind == "http":
                return web.Response(status=fault.status, text="<html>Bad Gateway</html>", content_type="text/html")
            if fault.kind == "fail":
                return web.json_response(_answer(fault.errcode, fault.errmsg))
            if fault.kind == "late":
                answer = self._dispatch(request, body)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), fault.seconds)
                return web.json_response(answer)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), fault.seconds)
        return web.json_response(self._dispatch(request, body))

    def _dispatch(self, request: web.Request, body: Any) -> Json:
        if self.trusted_ips is not None and request.remote not in self.trusted_ips:
            if request.path in ("/cgi-bin/token", "/cgi-bin/user/info", "/cgi-bin/message/custom/send",
                                "/cgi-bin/getcallbackip"):
                return _answer(40164, f"invalid ip {request.remote} ipv6 ::ffff:{request.remote}, not in whitelist")
            return _answer(60020, f"not allow to access from your ip, from ip: {request.remote}")
        if request.path == "/cgi-bin/gettoken":
            return self._wecom_token(request.query)
        if request.path == "/cgi-bin/token":
            return self._oa_token(request.query)
        route = ROUTES.get(request.path)
        if route is None:
            return _answer(48001, "api forbidden")
        method, audience, handler = route
        if request.method != method:
            return _answer(43004 if method == "POST" else 43001, f"require {method} method")
        try:
            app = self._authorise(request.query.get("access_token"), audience)
            if body is None and method == "POST":
                raise Refusal(47001, "data format error")
            return handler(self, app, dict(request.query), body or {})
        except Refusal as refusal:
            return _answer(refusal.errcode, refusal.errmsg)

    async def _upload(self, request: web.Request) -> Json:
        files: dict[str, tuple[str, bytes, str]] = {}
        async for part in await request.multipart():
            if isinstance(part, BodyPartReader) and part.name:
                files[part.name] = (part.filename or "", await part.read(), part.headers.get("Content-Type", ""))
        query = {k: v for k, v in request.query.items() if k != "access_token"}
        self.calls.append(Call(request.method, request.path, query, {k: v[0] for k, v in files.items()}, self.clock()))
        try:
            self._authorise(request.query.get("access_token"), "wecom")
            if request.path == MEDIA_UPLOAD_PATH:
                return self.upload_media(query, files)
            return self.upload_attachment(query, files)
        except Refusal as refusal:
            return _answer(refusal.errcode, refusal.errmsg)

    def _authorise(self, token: str | None, audience: Audience) -> str:
        if not token:
            raise Refusal(41001, "access_token missing")
        issued = self.tokens.get(token)
        if issued is None or issued.audience != audience:
            raise Refusal(*_UNKNOWN_TOKEN[audience])
        if self.clock() >= issued.expires_at:
            raise Refusal(42001, "access_token expired")
        return issued.app

    def _issue(self, audience: Audience, app: str) -> Json:
        if audience == "oa":
            # A new official-account token ends the old ones within 5 minutes (the docs'
            # overlap for a central token server): processes fetching apart cut each other off.
            cutoff = self.clock() + OA_TOKEN_OVERLAP
            for value, issued in list(self.tokens.items()):
                if issued.audience == "oa" and issued.app == app and issued.expires_at > cutoff:
                    self.tokens[value] = _Token("oa", app, cutoff)
        token = token_urlsafe(64)
        self.tokens[token] = _Token(audience, app, self.clock() + self.token_lifetime)
        self.tokens_issued += 1
        return {"access_token": token, "expires_in": self.token_lifetime}

    def _wecom_token(self, query: Mapping[str, str]) -> Json:
        if query.get("corpid") != self.corp_id:
            return _answer(40013, "invalid corpid")
        app = self.secrets.get(query.get("corpsecret", ""))
        if app is None:
            return _answer(40001, "invalid credential")
        return {"errcode": 0, "errmsg": "ok", **self._issue("wecom", app)}

    def _oa_token(self, query: Mapping[str, str]) -> Json:
        if query.get("grant_type") != "client_credential":
            return _answer(40002, "invalid grant_type")
        appid = query.get("appid", "")
        if appid not in self.official_accounts:
            return _answer(40013, "invalid appid")
        if query.get("secret") != self.official_accounts[appid]:
            return _answer(40001, "invalid credential, access_token is invalid or not latest")
        return self._issue("oa", appid)  # the official account leaves errcode out on success
