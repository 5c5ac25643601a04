"""What the fake WeCom cloud knows of 客户朋友圈 (Moments, WECOM.md §9.2), customer-group
welcome templates and group join ways (§9.3).

A Moments post is an asynchronous job: `get_moment_task_result` answers "running" for a
poll or two, then the moment_id with the senders and tags WeCom could not use. Staff
publish (or not) in their clients and customers like and comment: tests drive those
with `staff_publishes`, `customer_reacts`, and `delete_moment`. Where WeCom documents
an errmsg but no code (a template beyond the corp's 100, a bad config_id), 40058
(invalid parameter) carries it.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.wecom_state import Follow, Json, Refusal, TagGroup

MOMENT_TEXT_CHARS, MOMENT_TEXT_BYTES = 2000, 4000
MOMENT_IMAGES = 9
MOMENT_LINK_TITLE_BYTES = 64
MOMENT_LIST_SPAN = 30 * 86400
WELCOME_TEXT_BYTES = 3000
MAX_TEMPLATES = 100
JOIN_WAY_GROUPS = 5
STATE_CHARS = 30


@dataclass(slots=True)
class Moment:
    moment_id: str
    created_at: float
    body: Json
    senders: dict[str, bool]  # userid -> published
    reactions: list[Json] = field(default_factory=list)  # {kind, userid (publisher), external_userid, create_time}
    # Per publisher, once she published: the customers she chose to show it to, and
    # those it reached (fewer if one deleted her since).
    chosen: dict[str, list[str]] = field(default_factory=dict)
    reached: dict[str, list[str]] = field(default_factory=dict)
    deleted: bool = False


@dataclass(slots=True)
class MomentJob:
    jobid: str
    polls_left: int  # "running" answers before the result
    result: Json


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


class MomentsAndGroups:
    """Mixed into the fake cloud: `clock`, `staff`, `follows`, `groups`, `tag_groups`,
    `media_valid` and `_new_id` come from it."""

    clock: Callable[[], float]
    staff: set[str]
    follows: list[Follow]
    groups: dict[str, Json]
    tag_groups: dict[str, TagGroup]
    media_valid: Callable[[str], bool]
    _new_id: Callable[[str], str]

    def init_moments(self) -> None:
        self.moments: dict[str, Moment] = {}
        self.moment_jobs: dict[str, MomentJob] = {}
        self.job_polls = 1  # how many result polls answer "running" first
        self.welcome_templates: dict[str, Json] = {}  # template_id -> {creator, body}
        self.join_ways: dict[str, Json] = {}  # config_id -> fields (+ creator, qr_code)
        self._seq = itertools.count(1)

    # -- Moments -------------------------------------------------------------------------

    def add_moment_task(self, app: str, query: Json, body: Json) -> Json:
        text = (body.get("text") or {}).get("content") or ""
        attachments = body.get("attachments") or []
        if not text and not attachments:
            raise Refusal(44004, "empty content")
        if len(text) > MOMENT_TEXT_CHARS or _size(text) > MOMENT_TEXT_BYTES:
            raise Refusal(45002, "invalid text size")
        self._check_moment_attachments(attachments)
        visible = body.get("visible_range") or {}
        listed = [str(u).lower() for u in (visible.get("sender_list") or {}).get("user_list") or []]
        tag_ids = [str(t) for t in (visible.get("external_contact_list") or {}).get("tag_list") or []]
        known_tags = {t for g in self.tag_groups.values() for t in g.tags}
        good_tags = [t for t in tag_ids if t in known_tags]
        if listed:
            senders = [u for u in listed if u in self.staff]
        else:  # the follow-up members of the customers who may see it
            senders = sorted({f.userid for f in self.follows if not tag_ids or set(f.tags) & set(good_tags)})
        moment_id = self._new_id("mom")
        self.moments[moment_id] = Moment(moment_id, self.clock(), body, {u: False for u in senders})
        jobid = self._new_id("job")
        self.moment_jobs[jobid] = MomentJob(jobid, self.job_polls, {
            "errcode": 0, "errmsg": "ok", "moment_id": moment_id,
            "invalid_sender_list": {"user_list": [u for u in listed if u not in self.staff], "department_list": []},
            "invalid_external_contact_list": {"tag_list": [t for t in tag_ids if t not in known_tags]},
        })
        return {"errcode": 0, "errmsg": "ok", "jobid": jobid}

    def _check_moment_attachments(self, attachments: Any) -> None:
        if not isinstance(attachments, list):
            raise Refusal(40058, "invalid attachments msgtype")
        kinds = {a.get("msgtype") for a in attachments if isinstance(a, dict)}
        if len(kinds) > 1 or not kinds <= {"image", "video", "link"} or len(kinds) != (1 if attachments else 0):
            raise Refusal(40058, "invalid attachments msgtype")
        if ("image" in kinds and len(attachments) > MOMENT_IMAGES) or (kinds & {"video", "link"} and len(attachments) > 1):
            raise Refusal(40058, "invalid attachments size")
        for item in attachments:
            kind = item["msgtype"]
            spec = item.get(kind) or {}
            if not self.media_valid(str(spec.get("media_id", ""))):
                raise Refusal(40007, "invalid media_id")
            if kind == "link" and (not spec.get("url") or _size(str(spec.get("title", ""))) > MOMENT_LINK_TITLE_BYTES):
                raise Refusal(40058, "invalid link")

    def get_moment_task_result(self, app: str, query: Json, body: Json) -> Json:
        job = self.moment_jobs.get(str(query.get("jobid", "")))
        if job is None:
            raise Refusal(40058, "invalid jobid")
        if job.polls_left > 0:
            job.polls_left -= 1
            return {"errcode": 0, "errmsg": "ok", "status": 2, "type": "add_moment_task"}
        return {"errcode": 0, "errmsg": "ok", "status": 3, "type": "add_moment_task", "result": job.result}

    def _moment(self, body: Json) -> Moment:
        moment = self.moments.get(str(body.get("moment_id", "")))
        if moment is None or moment.deleted:
            raise Refusal(40058, "invalid moment_id")
        return moment

    def get_moment_task(self, app: str, query: Json, body: Json) -> Json:
        moment = self._moment(body)
        rows = [{"userid": u, "publish_status": int(p)} for u, p in sorted(moment.senders.items())]
        return self._page(body, rows, 1000, "task_list")

    def get_moment_comments(self, app: str, query: Json, body: Json) -> Json:
        moment = self._moment(body)
        userid = str(body.get("userid", "")).lower()
        if userid not in moment.senders:
            raise Refusal(40003, "invalid userid")
        mine = [r for r in moment.reactions if r["userid"] == userid]
        def listed(kind: str) -> list[Json]:
            return [{"external_userid": r["external_userid"], "create_time": r["create_time"]} for r in mine if r["kind"] == kind]
        return {"errcode": 0, "errmsg": "ok", "comment_list": listed("comment"), "like_list": listed("like")}

    def _publisher(self, body: Json) -> tuple[Moment, str]:
        moment = self._moment(body)
        userid = str(body.get("userid", "")).lower()
        if userid not in moment.senders:
            raise Refusal(40003, "invalid userid")
        return moment, userid

    def get_moment_customer_list(self, app: str, query: Json, body: Json) -> Json:
        """The customers a publisher chose to show the post to (doc 93333): {userid,
        external_userid}, pages of limit ≤1000; empty until she publishes."""
        moment, userid = self._publisher(body)
        rows = [{"userid": userid, "external_userid": e} for e in moment.chosen.get(userid, [])]
        return self._page(body, rows, 1000, "customer_list")

    def get_moment_send_result(self, app: str, query: Json, body: Json) -> Json:
        """The customers the post reached as she published it (doc 93333): {external_userid},
        pages of limit ≤5000; empty until she publishes."""
        moment, userid = self._publisher(body)
        rows = [{"external_userid": e} for e in moment.reached.get(userid, [])]
        return self._page(body, rows, 5000, "customer_list")

    def get_moment_list(self, app: str, query: Json, body: Json) -> Json:
        start, end = body.get("start_time"), body.get("end_time")
        if not isinstance(start, int) or not isinstance(end, int) or not 0 <= end - start <= MOMENT_LIST_SPAN:
            raise Refusal(40058, "start_time and end_time span at most 30 days")
        rows = []
        for moment in self.moments.values():
            if moment.deleted or not start <= moment.created_at <= end:
                continue
            # An API-created post has no creator (zsmhub's copy of doc 93333); create_type 0 = corp.
            rows.append({"moment_id": moment.moment_id, "create_time": int(moment.created_at), "create_type": 0,
                         "visible_type": 0 if moment.body.get("visible_range", {}).get("external_contact_list") else 1,
                         "text": moment.body.get("text") or {}})
        return self._page(body, rows, 20, "moment_list")

    def _page(self, body: Json, rows: list[Json], most: int, key: str) -> Json:
        limit = body.get("limit", most)
        if not isinstance(limit, int) or not 0 < limit <= most:
            raise Refusal(40058, f"limit must be 1..{most}")
        start = int(body.get("cursor") or 0)
        page = rows[start:start + limit]
        more = start + limit < len(rows)
        return {"errcode": 0, "errmsg": "ok", "next_cursor": str(start + limit) if more else "", key: page}

    def staff_publishes(self, moment_id: str, userid: str, customers: list[str] | None = None) -> None:
        """She taps 发表 in her client, showing it to `customers` (default: all of hers in
        the post's tags); it reaches those still her customers."""
        moment, userid = self.moments[moment_id], userid.lower()
        moment.senders[userid] = True
        tags = set((moment.body.get("visible_range") or {}).get("external_contact_list", {}).get("tag_list") or [])
        mine = [f.external_userid for f in self.follows if f.userid == userid and (not tags or tags & set(f.tags))]
        chosen = list(dict.fromkeys(customers if customers is not None else mine))
        moment.chosen[userid] = chosen
        moment.reached[userid] = [e for e in chosen if e in mine]

    def customer_reacts(self, moment_id: str, userid: str, external_userid: str, kind: str = "like") -> None:
        """A customer likes or comments on the post as `userid` published it."""
        moment = self.moments[moment_id]
        if not moment.senders.get(userid.lower()):
            raise ValueError("nobody sees a post its sender has not published")
        moment.reactions.append({"kind": kind, "userid": userid.lower(), "external_userid": external_userid,
                                 "create_time": int(self.clock())})

    def delete_moment(self, moment_id: str) -> None:
        self.moments[moment_id].deleted = True

    # -- group welcome templates ---------------------------------------------------------

    def _welcome_body(self, body: Json) -> Json:
        text = (body.get("text") or {}).get("content") or ""
        kinds = [k for k in ("image", "link", "miniprogram", "file", "video") if body.get(k)]
        if not text and not kinds:
            raise Refusal(44004, "empty content")
        if _size(text) > WELCOME_TEXT_BYTES:
            raise Refusal(45002, "content size out of limit")
        link = body.get("link") or {}
        if link and (not link.get("url") or _size(str(link.get("title", ""))) > 128 or _size(str(link.get("desc", ""))) > 512):
            raise Refusal(40058, "invalid link: title ≤128 bytes, desc ≤512 bytes, url required")
        image = body.get("image") or {}
        if image and not (image.get("media_id") or image.get("pic_url")):
            raise Refusal(40058, "image needs media_id or pic_url")
        return {k: body[k] for k in ("text", "image", "link", "miniprogram", "file", "video") if body.get(k)}

    def welcome_add(self, app: str, query: Json, body: Json) -> Json:
        content = self._welcome_body(body)
        if len(self.welcome_templates) >= MAX_TEMPLATES:
            raise Refusal(40058, "welcome template count reaches the limit of 100")
        template_id = self._new_id("msg")
        self.welcome_templates[template_id] = {"creator": app, "body": content, "notify": body.get("notify", 1)}
        return {"errcode": 0, "errmsg": "ok", "template_id": template_id}

    def _own_template(self, app: str, body: Json) -> Json:
        template = self.welcome_templates.get(str(body.get("template_id", "")))
        if template is None:
            raise Refusal(40058, "invalid template_id")
        if template["creator"] != app:
            raise Refusal(48002, "api forbidden: the template was created by someone else")
        return template

    def welcome_edit(self, app: str, query: Json, body: Json) -> Json:
        self._own_template(app, body)["body"] = self._welcome_body(body)
        return {"errcode": 0, "errmsg": "ok"}

    def welcome_get(self, app: str, query: Json, body: Json) -> Json:
        template = self.welcome_templates.get(str(body.get("template_id", "")))
        if template is None:
            raise Refusal(40058, "invalid template_id")
        return {"errcode": 0, "errmsg": "ok", **template["body"]}

    def welcome_del(self, app: str, query: Json, body: Json) -> Json:
        self._own_template(app, body)
        del self.welcome_templates[str(body["template_id"])]
        return {"errcode": 0, "errmsg": "ok"}

    def seed_welcome_template(self, text: str, creator: str = "admin") -> str:
        """A template an admin made in the admin console: counts toward the 100."""
        template_id = self._new_id("msg")
        self.welcome_templates[template_id] = {"creator": creator, "body": {"text": {"content": text}}, "notify": 1}
        return template_id

    # -- join ways -----------------------------------------------------------------------

    def _join_fields(self, body: Json) -> Json:
        if body.get("scene") not in (1, 2):
            raise Refusal(40058, "scene must be 1 or 2")
        chats = body.get("chat_id_list") or []
        if not isinstance(chats, list) or not 0 < len(chats) <= JOIN_WAY_GROUPS:
            raise Refusal(40058, f"chat_id_list: 1..{JOIN_WAY_GROUPS} groups")
        if any(c not in self.groups for c in chats):
            raise Refusal(40050, "chatid not found")
        state = str(body.get("state") or "")
        if len(state) > STATE_CHARS:
            raise Refusal(40058, f"state: at most {STATE_CHARS} characters")
        auto = body.get("auto_create_room", 1)
        if auto == 1 and not body.get("room_base_name"):
            raise Refusal(40058, "room_base_name is required when auto_create_room is 1")
        return {"scene": body["scene"], "remark": str(body.get("remark") or "")[:30], "auto_create_room": auto,
                "room_base_name": body.get("room_base_name", ""), "room_base_id": body.get("room_base_id", 1),
                "chat_id_list": list(chats), "state": state}

    def add_join_way(self, app: str, query: Json, body: Json) -> Json:
        fields = self._join_fields(body)
        config_id = secrets.token_hex(16)
        self.join_ways[config_id] = {**fields, "creator": app, "config_id": config_id,
                                     "qr_code": f"https://wework.qpic.cn/fake/joinway/{next(self._seq)}"}
        return {"errcode": 0, "errmsg": "ok", "config_id": config_id}

    def _own_way(self, app: str, body: Json) -> Json:
        way = self.join_ways.get(str(body.get("config_id", "")))
        if way is None or way["creator"] != app:
            raise Refusal(40058, "invalid config_id")
        return way

    def get_join_way(self, app: str, query: Json, body: Json) -> Json:
        way = self._own_way(app, body)
        return {"errcode": 0, "errmsg": "ok", "join_way": {k: v for k, v in way.items() if k != "creator"}}

    def update_join_way(self, app: str, query: Json, body: Json) -> Json:
        way = self._own_way(app, body)
        way.update(self._join_fields(body))
        return {"errcode": 0, "errmsg": "ok"}

    def del_join_way(self, app: str, query: Json, body: Json) -> Json:
        self._own_way(app, body)
        del self.join_ways[str(body["config_id"])]
        return {"errcode": 0, "errmsg": "ok"}

    def scan_join_way(self, config_id: str, external_userid: str) -> str:
        """A customer scans the QR code: she joins the first listed group, with its state;
        returns the chat_id."""
        way = self.join_ways[config_id]
        chat_id = way["chat_id_list"][0]
        group = self.groups[chat_id]
        group["members"] = list(dict.fromkeys([*group["members"], external_userid]))
        group.setdefault("states", {})[external_userid] = way["state"]
        return chat_id
