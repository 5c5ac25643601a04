"""What the fake WeCom cloud knows and decides for a corp: staff, customers, corp tags,
groups, app messages to staff, welcome codes, mass sends awaiting a staff member's
confirmation, and what reached a person.

Each API operation takes the parsed query/body and returns the JSON WeCom would answer,
or raises `Refusal(errcode)`; wecom_cloud.py adds the conversation windows (Customer
Service, official account) and the HTTP front: tokens, faults, the call record. Rules
follow WECOM.md §4; the clock is injected, so windows move only when a test moves them.
"""

from __future__ import annotations

import calendar
import hashlib
import itertools
import json
import re
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

Json = dict[str, Any]

WELCOME_CODE_TTL = 20.0
APP_LIMITS = ((30, 60.0), (1000, 3600.0))  # per app per member; excess silently dropped
_EXTERNAL_ID = re.compile(r"w[mo][0-9A-Za-z_-]{4,}")
MASS_PATH = "/cgi-bin/externalcontact/add_msg_template"
MASS_TEXT_BYTES = 4000
MASS_MAX_CUSTOMERS = 10_000
MASS_MAX_CHATS = 2_000
CHINA = timezone(timedelta(hours=8))


class Refusal(Exception):
    def __init__(self, errcode: int, errmsg: str):
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


@dataclass(frozen=True, slots=True)
class Delivery:
    path: str
    to: str
    body: Json
    at: float
    sender: str = ""  # app, staff userid, kf account or official account


@dataclass(slots=True)
class Customer:
    external_userid: str
    name: str
    avatar: str
    gender: int
    unionid: str | None


@dataclass(slots=True)
class Follow:
    userid: str
    external_userid: str
    remark: str
    createtime: int
    state: str | None
    tags: list[str] = field(default_factory=list)
    add_way: int = 1


@dataclass(slots=True)
class TagGroup:
    group_id: str
    name: str
    create_time: int
    order: int = 0
    tags: dict[str, tuple[str, int]] = field(default_factory=dict)  # tag id -> (name, create_time)


@dataclass(slots=True)
class MassTemplate:
    """One staff member's share of an add_msg_template call: waits for her to confirm."""

    msgid: str
    chat_type: str  # single | group
    sender: str  # the staff member who must confirm it in her WeCom client
    targets: list[str]  # external_userids, or chat_ids for a group send
    body: Json
    created_at: float
    # Per target once confirmed (get_groupmsg_send_result's status): 1 sent,
    # 2 no longer her customer, 3 over the customer's receiving cap.
    results: dict[str, int] = field(default_factory=dict)
    sent_at: dict[str, int] = field(default_factory=dict)  # target -> send_time (status 1 only)
    confirmed: bool = False


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _cut_bytes(text: str, limit: int) -> str:
    """WeCom cuts a long card title or description at a byte count, even inside a
    character: what is left of that character shows as U+FFFD here."""
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "replace")


def shown_textcard(body: Json) -> Json:
    """The card a staff member sees (WECOM.md §4.2): title ≤128 bytes and description
    ≤512 bytes, longer ones cut; btntxt ≤4 characters, default 详情; url ≤2048 bytes with
    its scheme. The docs do not say how a bad url is answered: 40058 (invalid parameter) is
    our choice, so a sender that gets it wrong fails loudly here."""
    card = body.get("textcard")
    if not isinstance(card, dict) or not all(isinstance(card.get(k), str) and card.get(k) for k in ("title", "description", "url")):
        raise Refusal(40058, "textcard needs title, description and url")
    url = card["url"]
    if not re.match(r"https?://", url) or _utf8_len(url) > 2048:
        raise Refusal(40058, "textcard url: at most 2048 bytes, with http:// or https://")
    button = card.get("btntxt") or "详情"
    if not isinstance(button, str):
        raise Refusal(40058, "textcard btntxt must be a string")
    return {"title": _cut_bytes(card["title"], 128), "description": _cut_bytes(card["description"], 512),
            "url": url, "btntxt": button[:4]}


def text_content(body: Json, limit: int) -> str:
    text = body.get("text")
    content = text.get("content") if isinstance(text, dict) else None
    if not isinstance(content, str) or not content:
        raise Refusal(44004, "empty content")
    if _utf8_len(content) > limit:
        raise Refusal(45002, "content size out of limit")
    return content


class WeComState:
    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.staff: set[str] = set()
        self.customers: dict[str, Customer] = {}
        self.follows: list[Follow] = []
        self.groups: dict[str, Json] = {}
        self.tag_groups: dict[str, TagGroup] = {}
        self.delivered: defaultdict[str, list[Delivery]] = defaultdict(list)
        self.dropped: list[Delivery] = []  # over the per-member limits: errcode 0, never delivered
        self.duplicates: list[Delivery] = []  # caught by enable_duplicate_check / a repeated kf msgid
        self._ids = itertools.count(1)
        self._app_sends: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
        self._recent_bodies: dict[tuple[str, str], tuple[float, str]] = {}
        self._welcome_codes: dict[str, tuple[float, str, str]] = {}
        self._used_welcome_codes: set[str] = set()
        self._page_cursors: dict[str, int] = {}
        self.mass_templates: list[MassTemplate] = []
        # Mass messages a customer receives per natural month (WECOM.md §4.3: currently
        # the days in the month; older rules said 4 a month or 1 a day). None: that default.
        self.mass_receive_cap: int | None = None
        self._mass_received: defaultdict[str, list[float]] = defaultdict(list)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}{secrets.token_hex(4)}"

    def deliveries(self, path: str) -> list[Delivery]:
        return list(self.delivered.get(path, []))

    def delivered_to(self, path: str) -> list[str]:
        """Who received something through `path`, in order (one entry per delivery)."""
        return [delivery.to for delivery in self.delivered.get(path, [])]

    def _deliver(self, path: str, to: str, body: Json, sender: str = "") -> None:
        self.delivered[path].append(Delivery(path, to, body, self.clock(), sender))

    # -- seeding ------------------------------------------------------------------------

    def add_staff(self, *userids: str) -> None:
        self.staff.update(userid.lower() for userid in userids)

    def add_tag(self, group_name: str, name: str) -> str:
        """Seed a corp tag (creating its group); returns the tag id."""
        return self._add_tags(None, group_name, [name])[1][0]

    def tag_id(self, group_name: str, name: str) -> str | None:
        """The id of the corp tag of that group and name, if there is one."""
        return next((t for t, names in self._tag_names().items() if names == (group_name, name)), None)

    def rename_tag(self, tag_id: str, name: str) -> None:
        """An admin renames a corp tag in the console (1..30 characters, as add_corp_tag)."""
        if not 0 < len(name) <= 30:
            raise ValueError("corp tag names have 1..30 characters")
        group = self._group_of(tag_id)
        group.tags[tag_id] = (name, group.tags[tag_id][1])

    def delete_tag(self, tag_id: str) -> None:
        """An admin deletes a corp tag: gone from the list and from every customer; a group
        left without tags goes too (WeCom keeps no empty groups)."""
        group = self._group_of(tag_id)
        del group.tags[tag_id]
        if not group.tags:
            del self.tag_groups[group.group_id]
        for follow in self.follows:
            follow.tags = [t for t in follow.tags if t != tag_id]

    def staff_sets_tags(self, userid: str, external_userid: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> None:
        """A staff member adds or removes corp tags on her customer in the WeCom client."""
        self.mark_tag("client", {}, {"userid": userid, "external_userid": external_userid,
                                     "add_tag": list(add), "remove_tag": list(remove)})

    def follow_tags(self, userid: str, external_userid: str) -> list[str]:
        """The corp tag ids a staff member has on a customer."""
        key = (userid.lower(), external_userid)
        return next((list(f.tags) for f in self.follows if (f.userid, f.external_userid) == key), [])

    def _group_of(self, tag_id: str) -> TagGroup:
        group = next((g for g in self.tag_groups.values() if tag_id in g.tags), None)
        if group is None:
            raise KeyError(f"no corp tag {tag_id}")
        return group

    def add_contact(
        self,
        userid: str,
        external_userid: str,
        name: str,
        unionid: str | None = None,
        state: str | None = None,
        gender: int = 0,
        avatar: str = "https://wework.qpic.cn/fake/avatar/0",
        remark: str = "",
        tags: Sequence[str] = (),
        add_way: int = 1,
    ) -> None:
        unknown = set(tags) - self._all_tag_ids()
        if unknown:
            raise ValueError(f"unknown tag ids {sorted(unknown)}: seed them with add_tag() first")
        self.add_staff(userid)
        self.customers[external_userid] = Customer(external_userid, name, avatar, gender, unionid)
        self.remove_contact(userid, external_userid)
        self.follows.append(Follow(userid.lower(), external_userid, remark, int(self.clock()), state, list(tags), add_way))

    def remove_contact(self, userid: str, external_userid: str) -> None:
        self.follows = [f for f in self.follows if (f.userid, f.external_userid) != (userid.lower(), external_userid)]

    def add_group(self, chat_id: str, name: str, owner: str, members: Sequence[str]) -> None:
        self.add_staff(owner)
        self.groups[chat_id] = {"chat_id": chat_id, "name": name, "owner": owner.lower(),
                                "create_time": int(self.clock()), "members": list(dict.fromkeys([owner.lower(), *members]))}

    def issue_welcome_code(self, external_userid: str, userid: str) -> str:
        code = secrets.token_urlsafe(24)
        self._welcome_codes[code] = (self.clock(), external_userid, userid)
        return code

    # -- app messages (§4.2) ------------------------------------------------------------

    def message_send(self, app: str, query: Json, body: Json) -> Json:
        path = "/cgi-bin/message/send"
        if not isinstance(body.get("agentid"), int):
            raise Refusal(40056, "invalid agentid")
        msgtype = body.get("msgtype")
        shown = body  # what reaches the staff member
        if msgtype == "text":
            text_content(body, 2048)
        elif msgtype == "textcard":
            shown = body | {"textcard": shown_textcard(body)}
        else:
            raise Refusal(40008, "invalid message type")
        users = [user.lower() for user in str(body.get("touser") or "").split("|") if user]
        if not users:
            raise Refusal(40058, "touser, toparty and totag are all empty")
        valid = [user for user in users if user in self.staff]
        invalid = [user for user in users if user not in self.staff]
        if not valid:
            raise Refusal(81013, "user & party & tag all invalid")
        now = self.clock()
        if body.get("enable_duplicate_check") == 1:
            interval = body.get("duplicate_check_interval", 1800)
            if not isinstance(interval, int) or not 0 < interval <= 4 * 3600:
                raise Refusal(40058, "invalid duplicate_check_interval")
            key = (app, json.dumps(body, sort_keys=True, ensure_ascii=False))
            seen = self._recent_bodies.get(key)
            if seen is not None and now - seen[0] < interval:
                self.duplicates.extend(Delivery(path, user, body, now, app) for user in valid)
                return {"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid), "msgid": seen[1]}
            msgid = self._new_id("msg")
            self._recent_bodies[key] = (now, msgid)
        else:
            msgid = self._new_id("msg")
        for user in valid:
            sends = self._app_sends[(app, user)]
            if any(sum(now - at < window for at in sends) >= count for count, window in APP_LIMITS):
                self.dropped.append(Delivery(path, user, body, now, app))
                continue
            sends.append(now)
            self._deliver(path, user, shown, app)
        return {"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid), "msgid": msgid}

    # -- mass sends (§4.3) --------------------------------------------------------------

    def add_msg_template(self, app: str, query: Json, body: Json) -> Json:
        """Creates the send task; nothing reaches a customer until `confirm_mass_send`."""
        chat_type = body.get("chat_type") or "single"
        if chat_type not in ("single", "group"):
            raise Refusal(40058, "invalid chat_type")
        attachments = body.get("attachments") or []
        if not isinstance(attachments, list) or len(attachments) > 9:
            raise Refusal(40058, "attachments: at most 9")
        for attachment in attachments:
            self._check_mass_attachment(attachment)
        if body.get("text") is not None or not attachments:  # text and attachments not both empty
            text_content(body, MASS_TEXT_BYTES)
        sender = str(body.get("sender") or "").lower()
        if sender and sender not in self.staff:
            raise Refusal(40003, "invalid userid")
        fail_list: list[str] = []
        if chat_type == "group":
            tasks = self._mass_groups(sender, body.get("chat_id_list") or [])
        else:
            tasks, fail_list = self._mass_customers(sender, body.get("external_userid") or [])
        if not tasks:
            raise Refusal(41048, "no sendable customer")
        msgid = self._new_id("msg")
        now = self.clock()
        self.mass_templates.extend(MassTemplate(msgid, chat_type, staff, targets, body, now) for staff, targets in tasks.items())
        return {"errcode": 0, "errmsg": "ok", "fail_list": fail_list, "msgid": msgid}

    def _check_mass_attachment(self, attachment: Any) -> None:
        """One of add_msg_template's attachments (§4.3): image {media_id | pic_url}, link
        {title ≤128 B, url, desc ≤512 B, picurl}, miniprogram {title ≤64 B, pic_media_id,
        appid, page ending .html}; media_ids must be live uploads (40007 otherwise)."""
        kind = attachment.get("msgtype") if isinstance(attachment, dict) else None
        inner = attachment.get(kind) if kind in ("image", "link", "miniprogram", "video", "file") else None
        if not isinstance(inner, dict):
            raise Refusal(40058, "invalid attachments msgtype")
        media_valid = self.media_valid  # type: ignore[attr-defined]  # the cloud mixes in StaffTools
        if kind == "image":
            if not inner.get("pic_url") and not media_valid(str(inner.get("media_id") or "")):
                raise Refusal(40007, "invalid media_id")
        elif kind == "link":
            title, url = str(inner.get("title") or ""), str(inner.get("url") or "")
            if not title or _utf8_len(title) > 128 or not url or _utf8_len(str(inner.get("desc") or "")) > 512:
                raise Refusal(40058, "link: title (≤128 bytes) and url required, desc ≤512 bytes")
        elif kind == "miniprogram":
            title, page = str(inner.get("title") or ""), str(inner.get("page") or "")
            if not title or _utf8_len(title) > 64 or not inner.get("appid") or not page.endswith(".html"):
                raise Refusal(40058, "miniprogram: title (≤64 bytes), appid and a .html page required")
            if not media_valid(str(inner.get("pic_media_id") or "")):
                raise Refusal(40007, "invalid media_id")
        elif not media_valid(str(inner.get("media_id") or "")):
            raise Refusal(40007, "invalid media_id")

    def get_groupmsg_list_v2(self, app: str, query: Json, body: Json) -> Json:
        """The corp's mass sends in a time window (doc 93338): one item per msgid, without
        `creator` for those created through the API; at most a month; pages of ≤100."""
        start, end = body.get("start_time"), body.get("end_time")
        if not isinstance(start, int) or not isinstance(end, int) or end < start:
            raise Refusal(40058, "start_time and end_time are required")
        if end - start > 31 * 86400:
            raise Refusal(40058, "the time span is at most one month")
        limit = body.get("limit", 50)
        if not isinstance(limit, int) or not 0 < limit <= 100:
            raise Refusal(40058, "limit: 1..100")
        chat_type = body.get("chat_type") or "single"
        listed: dict[str, Json] = {}
        for task in self.mass_templates:
            if task.chat_type == chat_type and start <= task.created_at <= end and task.msgid not in listed:
                listed[task.msgid] = {
                    "msgid": task.msgid, "create_type": 0, "create_time": str(int(task.created_at)),
                    "text": dict(task.body.get("text") or {}), "attachments": list(task.body.get("attachments") or []),
                }
        items = list(listed.values())
        offset = int(body.get("cursor") or 0)
        page = items[offset:offset + limit]
        more = offset + limit < len(items)
        return {"errcode": 0, "errmsg": "ok", "next_cursor": str(offset + limit) if more else "", "group_msg_list": page}

    def get_groupmsg_task(self, app: str, query: Json, body: Json) -> Json:
        """Who a mass send waits on (doc 93338): status 0 not sent yet, 2 sent."""
        msgid = body.get("msgid")
        tasks = [t for t in self.mass_templates if t.msgid == msgid]
        if not tasks:
            raise Refusal(40058, "invalid msgid")
        return {"errcode": 0, "errmsg": "ok", "next_cursor": "", "task_list": [
            {"userid": t.sender, "status": 2 if t.confirmed else 0} for t in tasks
        ]}

    def get_groupmsg_send_result(self, app: str, query: Json, body: Json) -> Json:
        """One staff member's share of a mass send, target by target (doc 93338):
        status 0 not sent (she has not confirmed), 1 sent (with send_time), 2 not her
        customer any more, 3 over the customer's receiving cap; `external_userid` for a
        send to customers, `chat_id` for one to groups; pages of limit ≤1000 (default
        500) with next_cursor, empty on the last page."""
        msgid, userid = body.get("msgid"), str(body.get("userid") or "").lower()
        tasks = [t for t in self.mass_templates if t.msgid == msgid]
        if not tasks:
            raise Refusal(40058, "invalid msgid")
        if not userid:
            raise Refusal(40058, "userid is required")
        limit = body.get("limit", 500)
        if not isinstance(limit, int) or not 0 < limit <= 1000:
            raise Refusal(40058, "limit: 1..1000")
        rows: list[Json] = []
        for task in (t for t in tasks if t.sender == userid):
            key = "external_userid" if task.chat_type == "single" else "chat_id"
            for target in task.targets:
                status = task.results.get(target, 0)
                row: Json = {key: target, "userid": task.sender, "status": status}
                if status == 1:
                    row["send_time"] = task.sent_at[target]
                rows.append(row)
        offset = int(body.get("cursor") or 0)
        more = offset + limit < len(rows)
        return {"errcode": 0, "errmsg": "ok", "next_cursor": str(offset + limit) if more else "",
                "send_list": rows[offset:offset + limit]}

    def _mass_groups(self, sender: str, chat_ids: Any) -> dict[str, list[str]]:
        if not sender:
            raise Refusal(40058, "sender is required for a group mass send")
        if not isinstance(chat_ids, list) or len(chat_ids) > MASS_MAX_CHATS:
            raise Refusal(40058, f"chat_id_list: at most {MASS_MAX_CHATS}")
        owned = [c for c, g in self.groups.items() if g["owner"] == sender]
        chosen = [c for c in dict.fromkeys(chat_ids) if c in owned] if chat_ids else owned
        return {sender: chosen} if chosen else {}

    def _mass_customers(self, sender: str, external_userids: Any) -> tuple[dict[str, list[str]], list[str]]:
        if not isinstance(external_userids, list) or len(external_userids) > MASS_MAX_CUSTOMERS:
            raise Refusal(40058, f"external_userid: at most {MASS_MAX_CUSTOMERS}")
        if not external_userids and not sender:
            raise Refusal(40058, "external_userid and sender cannot both be empty")
        follows = [f for f in self.follows if not sender or f.userid == sender]
        if not external_userids:  # every customer of the sender
            return ({sender: list(dict.fromkeys(f.external_userid for f in follows))} if follows else {}), []
        tasks: dict[str, list[str]] = {}
        fail_list = []
        for external_userid in dict.fromkeys(str(e) for e in external_userids):
            mine = [f for f in follows if f.external_userid == external_userid]
            if not _EXTERNAL_ID.fullmatch(external_userid) or not mine:
                fail_list.append(external_userid)
                continue
            # Without a sender, the staff member who last added (chatted with) her sends it.
            staff = max(mine, key=lambda f: f.createtime).userid
            tasks.setdefault(staff, []).append(external_userid)
        return tasks, fail_list

    def confirm_mass_send(self, msgid: str, userid: str | None = None) -> list[Delivery]:
        """The staff member taps 确认发送: her share of the task reaches its targets now."""
        path, delivered = MASS_PATH, []
        for task in self.mass_templates:
            if task.msgid != msgid or task.confirmed or (userid is not None and task.sender != userid.lower()):
                continue
            task.confirmed = True
            for target in task.targets:
                if task.chat_type == "single" and not any(
                        (f.userid, f.external_userid) == (task.sender, target) for f in self.follows):
                    task.results[target] = 2
                    continue
                if task.chat_type == "single" and not self._may_receive_mass(target):
                    task.results[target] = 3
                    continue
                task.results[target] = 1
                task.sent_at[target] = int(self.clock())
                self._deliver(path, target, task.body, task.sender)
                delivered.append(self.delivered[path][-1])
        return delivered

    def customer_received_mass(self, external_userid: str) -> None:
        """She received another mass message (of any member of the corp) just now: it
        counts against her receiving cap."""
        self._mass_received[external_userid].append(self.clock())

    def _may_receive_mass(self, external_userid: str) -> bool:
        now = datetime.fromtimestamp(self.clock(), CHINA)
        cap = self.mass_receive_cap or calendar.monthrange(now.year, now.month)[1]
        month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
        received = [t for t in self._mass_received[external_userid] if t >= month_start]
        if len(received) >= cap:
            return False
        self._mass_received[external_userid] = [*received, self.clock()]
        return True

    # -- customers (§4.4–4.8) -----------------------------------------------------------

    def send_welcome_msg(self, app: str, query: Json, body: Json) -> Json:
        code = str(body.get("welcome_code") or "")
        if code in self._used_welcome_codes:
            raise Refusal(41051, "customer already begin chatting or welcome msg already sent")
        issued = self._welcome_codes.get(code)
        if issued is None or self.clock() - issued[0] > WELCOME_CODE_TTL:
            raise Refusal(41050, "invalid welcome_code or welcome_code expired")
        text_content(body, 4000)
        self._used_welcome_codes.add(code)
        self._deliver("/cgi-bin/externalcontact/send_welcome_msg", issued[1], body, sender=issued[2])
        return {"errcode": 0, "errmsg": "ok"}

    def _tag_names(self) -> dict[str, tuple[str, str]]:
        return {tag_id: (group.name, tag[0]) for group in self.tag_groups.values() for tag_id, tag in group.tags.items()}

    def _all_tag_ids(self) -> set[str]:
        return set(self._tag_names())

    def _customer_json(self, external_userid: str) -> Json:
        customer = self.customers[external_userid]
        found: Json = {"external_userid": external_userid, "name": customer.name, "avatar": customer.avatar,
                       "type": 1, "gender": customer.gender}
        if customer.unionid:
            found["unionid"] = customer.unionid
        return found

    @staticmethod
    def _follow_json(follow: Follow) -> Json:
        found: Json = {"userid": follow.userid, "remark": follow.remark, "description": "", "createtime": follow.createtime,
                       "remark_mobiles": [], "oper_userid": follow.userid, "add_way": follow.add_way}
        if follow.state is not None:
            found["state"] = follow.state
        return found

    def external_get(self, app: str, query: Json, body: Json) -> Json:
        external_userid = str(query.get("external_userid", ""))
        if not _EXTERNAL_ID.fullmatch(external_userid):
            raise Refusal(40096, "invalid external userid")
        follows = [f for f in self.follows if f.external_userid == external_userid]
        if not follows:
            raise Refusal(84061, "not external contact")
        names = self._tag_names()
        follow_user = []
        for follow in follows:
            item = self._follow_json(follow)
            item["tags"] = [{"group_name": names[t][0], "tag_name": names[t][1], "tag_id": t, "type": 1}
                            for t in follow.tags if t in names]
            follow_user.append(item)
        return {"errcode": 0, "errmsg": "ok", "external_contact": self._customer_json(external_userid),
                "follow_user": follow_user, "next_cursor": ""}

    def follow_user_list(self, app: str, query: Json, body: Json) -> Json:
        """Staff with customer contact enabled (we treat every seeded staff member so)."""
        return {"errcode": 0, "errmsg": "ok", "follow_user": sorted(self.staff)}

    def external_list(self, app: str, query: Json, body: Json) -> Json:
        userid = str(query.get("userid", "")).lower()
        if userid not in self.staff:
            raise Refusal(40003, "invalid userid")
        return {"errcode": 0, "errmsg": "ok",
                "external_userid": [f.external_userid for f in self.follows if f.userid == userid]}

    def batch_get_by_user(self, app: str, query: Json, body: Json) -> Json:
        userids = body.get("userid_list")
        limit = body.get("limit", 50)
        if not isinstance(userids, list) or not 0 < len(userids) <= 100 or not isinstance(limit, int) or not 0 < limit <= 100:
            raise Refusal(40058, "userid_list needs 1..100 userids and limit 1..100")
        wanted = [str(userid).lower() for userid in userids]
        rows = [f for userid in wanted for f in self.follows if f.userid == userid]
        cursor = body.get("cursor") or ""
        start = self._page_cursors.get(cursor) if cursor else 0
        if start is None:
            raise Refusal(40058, "invalid cursor")
        page = rows[start : start + limit]
        next_cursor = ""
        if start + limit < len(rows):
            next_cursor = secrets.token_urlsafe(16)
            self._page_cursors[next_cursor] = start + limit
        contacts = [{"external_contact": self._customer_json(f.external_userid),
                     "follow_info": {**self._follow_json(f), "tag_id": list(f.tags)}} for f in page]
        return {"errcode": 0, "errmsg": "ok", "external_contact_list": contacts, "next_cursor": next_cursor}

    def groupchat_get(self, app: str, query: Json, body: Json) -> Json:
        group = self.groups.get(str(body.get("chat_id", "")))
        if group is None:
            raise Refusal(40050, "chatid not found")
        members = []
        for member in group["members"]:
            staff = member in self.staff
            item: Json = {"userid": member, "type": 1 if staff else 2, "join_time": group["create_time"],
                          "join_scene": 1, "group_nickname": ""}
            if member != group["owner"]:
                item["invitor"] = {"userid": group["owner"]}
            if state := group.get("states", {}).get(member):  # joined through a join way (§9.3)
                item["state"] = state
                item["join_scene"] = 3
            if body.get("need_name") == 1:
                item["name"] = member if staff else self.customers[member].name if member in self.customers else ""
            members.append(item)
        version = hashlib.md5(json.dumps(group["members"]).encode()).hexdigest()  # changes with membership
        return {"errcode": 0, "errmsg": "ok", "group_chat": {
            "chat_id": group["chat_id"], "name": group["name"], "owner": group["owner"], "create_time": group["create_time"],
            "notice": "", "member_list": members, "admin_list": [], "member_version": version}}

    # -- corp tags (§4.5, §4.6) ---------------------------------------------------------

    def mark_tag(self, app: str, query: Json, body: Json) -> Json:
        add, remove = list(body.get("add_tag") or []), list(body.get("remove_tag") or [])
        if not add and not remove:
            raise Refusal(40058, "add_tag and remove_tag are both empty")
        key = (str(body.get("userid", "")).lower(), body.get("external_userid"))
        follow = next((f for f in self.follows if (f.userid, f.external_userid) == key), None)
        if follow is None:
            raise Refusal(84061, "not external contact")
        if set(add + remove) - self._all_tag_ids():
            raise Refusal(40068, "invalid tagid")
        follow.tags = [t for t in dict.fromkeys(follow.tags + add) if t not in remove]
        return {"errcode": 0, "errmsg": "ok"}

    def get_corp_tag_list(self, app: str, query: Json, body: Json) -> Json:
        group_ids, tag_ids = set(body.get("group_id") or []), set(body.get("tag_id") or [])
        found = []
        for group in self.tag_groups.values():
            if group_ids and group.group_id not in group_ids:
                continue
            tags = [(t, spec) for t, spec in group.tags.items() if group_ids or not tag_ids or t in tag_ids]
            if tags:
                found.append(self._group_json(group, tags))
        return {"errcode": 0, "errmsg": "ok", "tag_group": found}

    def add_corp_tag(self, app: str, query: Json, body: Json) -> Json:
        names = [str(tag.get("name", "")) for tag in body.get("tag") or [] if isinstance(tag, dict)]
        if not names or any(not name or len(name) > 30 for name in names):
            raise Refusal(40058, "tag names must be 1..30 characters, at least one")
        group_id = body.get("group_id")
        if group_id and group_id not in self.tag_groups:
            raise Refusal(40068, "invalid tagid")
        group, ids = self._add_tags(group_id, str(body.get("group_name", "")), names)
        return {"errcode": 0, "errmsg": "ok", "tag_group": self._group_json(group, [(t, group.tags[t]) for t in ids])}

    def _add_tags(self, group_id: str | None, group_name: str, names: Sequence[str]) -> tuple[TagGroup, list[str]]:
        group = self.tag_groups.get(group_id or "") or next(
            (g for g in self.tag_groups.values() if g.name == group_name), None)
        if group is None:
            if not group_name:
                raise Refusal(40058, "group_name or group_id required")
            group = TagGroup(self._new_id("etG"), group_name, int(self.clock()))
            self.tag_groups[group.group_id] = group
        ids = []
        for name in dict.fromkeys(names):  # duplicate names collapse into one tag
            existing = next((t for t, spec in group.tags.items() if spec[0] == name), None)
            if existing is None:
                existing = self._new_id("etT")
                group.tags[existing] = (name, int(self.clock()))
            ids.append(existing)
        return group, ids

    @staticmethod
    def _group_json(group: TagGroup, tags: list[tuple[str, tuple[str, int]]]) -> Json:
        return {"group_id": group.group_id, "group_name": group.name, "create_time": group.create_time,
                "order": group.order, "deleted": False,
                "tag": [{"id": t, "name": name, "create_time": at, "order": 0, "deleted": False} for t, (name, at) in tags]}
