"""客户朋友圈 (Moments) on WeCom's API (WECOM.md §9.2; docs 95094/96351, 96352, 93333).

The corp creates a post (`add_moment_task`, an asynchronous job); WeCom hands it to the
staff members who must publish it, each confirming in her client; we read who did
(`get_moment_task`), whether the post still exists (`get_moment_list`: deleted posts
are not listed) and who reacted (`get_moment_comments`). Images and a link's cover are
uploaded first (`media/upload_attachment`, attachment_type 1 = Moments; a media_id
lives three days). WeCom's limits on a post are checked before any call, by
`scheduler.moments`, the same checks the calendar makes when an entry is saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.platforms.wecom.client import Json, Upload, WeComClient

ADD_TASK = "/cgi-bin/externalcontact/add_moment_task"
TASK_RESULT = "/cgi-bin/externalcontact/get_moment_task_result"
MOMENT_LIST = "/cgi-bin/externalcontact/get_moment_list"
MOMENT_TASK = "/cgi-bin/externalcontact/get_moment_task"
COMMENTS = "/cgi-bin/externalcontact/get_moment_comments"
UPLOAD = "/cgi-bin/media/upload_attachment"
JOB_DONE = 3  # get_moment_task_result status: 1 started, 2 running, 3 done
LIST_LIMIT, TASK_LIMIT = 20, 1000  # per page, at most (get_moment_list, get_moment_task)


async def upload_image(client: WeComClient, filename: str, content: bytes, content_type: str) -> str:
    """An image for Moments; returns its media_id (valid three days)."""
    data = await client.call(
        "POST", UPLOAD, query={"media_type": "image", "attachment_type": "1"},
        files={"media": Upload(filename, content, content_type)},
    )
    return str(data["media_id"])


def post_body(
    text: str, image_ids: Sequence[str] = (), link: tuple[str, str, str] | None = None,
    tag_ids: Sequence[str] = (), senders: Sequence[str] = (),
) -> Json:
    """add_moment_task's body. `link` is (title, url, cover media_id). Without tags the
    post is public to the senders' customers; without senders WeCom asks every member in
    the app's visibility who has such customers."""
    body: Json = {}
    if text:
        body["text"] = {"content": text}
    attachments: list[Json] = [{"msgtype": "image", "image": {"media_id": m}} for m in image_ids]
    if link is not None:
        title, url, cover = link
        attachments.append({"msgtype": "link", "link": {"title": title, "url": url, "media_id": cover}})
    if attachments:
        body["attachments"] = attachments
    visible: Json = {}
    if senders:
        visible["sender_list"] = {"user_list": list(senders)}
    if tag_ids:
        visible["external_contact_list"] = {"tag_list": list(tag_ids)}
    if visible:
        body["visible_range"] = visible
    return body


async def add_moment_task(client: WeComClient, body: Json) -> str:
    """Starts the job; returns its jobid (valid 24 h)."""
    return str((await client.call("POST", ADD_TASK, body=body))["jobid"])


@dataclass(frozen=True, slots=True)
class MomentJob:
    done: bool
    moment_id: str | None = None
    errcode: int = 0
    errmsg: str = ""
    invalid_senders: tuple[str, ...] = ()
    invalid_tags: tuple[str, ...] = ()


async def moment_job(client: WeComClient, jobid: str) -> MomentJob:
    data = await client.call("GET", TASK_RESULT, query={"jobid": jobid})
    if data.get("status") != JOB_DONE:
        return MomentJob(False)
    result: dict[str, Any] = data.get("result") or {}
    senders = (result.get("invalid_sender_list") or {}).get("user_list") or []
    tags = (result.get("invalid_external_contact_list") or {}).get("tag_list") or []
    return MomentJob(
        True, str(result["moment_id"]) if result.get("moment_id") else None, int(result.get("errcode") or 0),
        str(result.get("errmsg") or ""), tuple(map(str, senders)), tuple(map(str, tags)),
    )


async def publishers(client: WeComClient, moment_id: str) -> dict[str, bool]:
    """Every staff member asked to publish the post → whether she has."""
    found: dict[str, bool] = {}
    cursor = ""
    while True:
        data = await client.call("POST", MOMENT_TASK, body={"moment_id": moment_id, "cursor": cursor, "limit": TASK_LIMIT})
        for item in data.get("task_list") or []:
            found[str(item["userid"])] = item.get("publish_status") == 1
        cursor = str(data.get("next_cursor") or "")
        if not cursor:
            return found


async def listed_moments(client: WeComClient, start: int, end: int) -> set[str]:
    """The corp's posts created in [start, end] (unix seconds, a span of at most 30 days)
    that still exist."""
    found: set[str] = set()
    cursor = ""
    while True:
        data = await client.call("POST", MOMENT_LIST, body={
            "start_time": start, "end_time": end, "filter_type": 0, "cursor": cursor, "limit": LIST_LIMIT,
        })
        found.update(str(item["moment_id"]) for item in data.get("moment_list") or [])
        cursor = str(data.get("next_cursor") or "")
        if not cursor:
            return found


@dataclass(frozen=True, slots=True)
class Reaction:
    kind: str  # like | comment
    at: int  # unix seconds
    external_userid: str | None = None  # a customer
    userid: str | None = None  # a colleague


async def reactions(client: WeComClient, moment_id: str, userid: str) -> list[Reaction]:
    """Likes and comments on the post as `userid` published it."""
    data = await client.call("POST", COMMENTS, body={"moment_id": moment_id, "userid": userid})
    found = []
    for kind, key in (("comment", "comment_list"), ("like", "like_list")):
        for item in data.get(key) or []:
            found.append(Reaction(kind, int(item.get("create_time") or 0),
                                  item.get("external_userid") or None, item.get("userid") or None))
    return found
