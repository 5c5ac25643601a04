"""A calendar's Moments post on WeCom, row by row (routes of the WeCom sender):

- `moment_task`: upload the images (or the link's cover), turn the audience's tags into
  corp tags, create the post (`add_moment_task`), record it, and queue `moment_result`;
- `moment_result`: follow the job until WeCom has the post (retried while it runs), then
  give each staff member WeCom asked to publish it a task and a prompt;
- `moment_read` (queued by the scheduler): who published (their tasks close as done),
  whether the post still exists, the likes and comments, recorded as the reacting
  members' interactions (engagement), and the customers it reached, each a touch of
  the calendar entry (send_results).

There is no idempotency key on add_moment_task: a send retried after a lost answer may
create a second post for staff to publish, as a mass send may.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import mimetypes
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bot.platforms.wecom import moments as api
from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.corp_tags import CorpTags, TagNameTooLong
from bot.platforms.wecom.send_results import moment_receivers
from handlers.outbound import prompt_meta, task_page
from scheduler.delivery import OutboundMessage, SendResult
from storage.engine import SessionFactory
from storage.interactions import record_interaction
from storage.members import member_by_identity
from storage.models import StaffTask
from storage.moments import publishers_of
from storage.outbox import NewOutboxMessage, enqueue
from storage.outcomes import Received, TouchSource, record_received
from storage.outreach_models import MomentPost, MomentPublisher
from storage.staff import staff_by_userid
from storage.tasks import NewTask, close_task, create_task

PLATFORM = "wecom"
JOB_POLL_SECONDS = 10.0  # a running job is asked again after this long (delivery's 8 attempts: ~80 s)
LIST_SPAN = 30 * 86400  # get_moment_list's longest window
REACTIONS = {"like": "朋友圈点赞", "comment": "朋友圈评论"}
TAGS_WITHOUT_SYNC = ("this post is shown by corp tags, but tag sync with WeCom is off "
                     "(platforms.wecom.tag_sync_group): nothing posted")


def _read_image(path: str) -> tuple[str, bytes, str]:
    file = Path(path)
    return file.name, file.read_bytes(), mimetypes.guess_type(file.name)[0] or "image/jpeg"


class MomentsFlow:
    def __init__(
        self, client: WeComClient, sessions: SessionFactory, corp_tags: CorpTags | None,
        clock: Callable[[], datetime], outcome_scheme: str = "value",
    ):
        self._outcome_scheme = outcome_scheme  # the layer scheme a published post's task touch records
        self._client = client
        self._sessions = sessions
        self._corp_tags = corp_tags
        self._clock = clock

    # -- moment_task --------------------------------------------------------------------

    async def post(self, message: OutboundMessage) -> SendResult:
        meta = message.meta
        tags = [(str(g), str(n)) for g, n in meta.get("tags") or []]
        if tags and self._corp_tags is None:
            return SendResult.failed(TAGS_WITHOUT_SYNC)
        try:
            image_ids = [await self._upload(path) for path in meta.get("images") or []]
            link_spec: Mapping[str, str] | None = meta.get("link")
            link = (link_spec["title"], link_spec["url"], await self._upload(link_spec["cover"])) if link_spec else None
        except OSError as error:  # the file went away since the entry was saved
            return SendResult.failed(f"image file unreadable: {error.strerror}: {Path(error.filename or '').name}")
        try:
            tag_ids = await self._corp_tags.ids_for(tags, create=True) if tags and self._corp_tags else []
        except TagNameTooLong as error:
            return SendResult.failed(str(error))
        if tags and not tag_ids:
            return SendResult.failed("none of the audience's tags is a corp tag WeCom knows: nobody would see it")
        body = api.post_body(message.body, image_ids, link, tag_ids, [str(s) for s in meta.get("senders") or []])
        jobid = await api.add_moment_task(self._client, body)
        now = self._clock()
        async with self._sessions() as session, session.begin():
            post = MomentPost(outbox_id=message.id, entry=str(meta.get("entry", "")), title=str(meta.get("title", ""))[:128],
                              jobid=jobid, created_at=now)
            session.add(post)
            await session.flush()
            follow = {"post": post.id, "prompt": meta.get("prompt") or "", "title": post.title}
            await enqueue(session, [NewOutboxMessage(
                f"moment:{post.id}:result", PLATFORM, jobid, "request", "", route="moment_result",
                not_before=now + timedelta(seconds=2), meta=json.dumps(follow, ensure_ascii=False),
            )], now)
        return SendResult.sent(jobid)

    async def _upload(self, path: str) -> str:
        name, content, kind = await asyncio.to_thread(_read_image, path)
        return await api.upload_image(self._client, name, content, kind)

    # -- moment_result ------------------------------------------------------------------

    async def follow_job(self, message: OutboundMessage) -> SendResult:
        job = await api.moment_job(self._client, message.recipient)
        if not job.done:
            return SendResult.retry("WeCom is still creating the Moments post", JOB_POLL_SECONDS)
        post_id = int(message.meta["post"])
        if job.errcode or not job.moment_id:
            async with self._sessions() as session, session.begin():
                post = await session.get(MomentPost, post_id)
                assert post is not None
                post.status, post.problem = "failed", f"errcode {job.errcode}: {job.errmsg}"
            return SendResult.failed(f"WeCom did not create the post: errcode {job.errcode}: {job.errmsg}")
        asked = await api.publishers(self._client, job.moment_id)
        left_out = [f"staff WeCom could not ask: {', '.join(job.invalid_senders)}"] if job.invalid_senders else []
        left_out += [f"corp tags WeCom did not take: {', '.join(job.invalid_tags)}"] if job.invalid_tags else []
        await self._ask_publishers(post_id, job.moment_id, asked, message.meta, "; ".join(left_out) or None)
        return SendResult.sent(job.moment_id)

    async def _ask_publishers(
        self, post_id: int, moment_id: str, asked: Mapping[str, bool], meta: Mapping[str, Any], problem: str | None
    ) -> None:
        """A task and a prompt for each staff member WeCom asked to publish the post."""
        now = self._clock()
        title, prompt = str(meta.get("title") or ""), str(meta.get("prompt") or "")
        heading = f"发朋友圈：{title}"[:256]
        async with self._sessions() as session, session.begin():
            post = await session.get(MomentPost, post_id)
            assert post is not None
            post.moment_id, post.status, post.problem = moment_id, "posted", problem
            known = await publishers_of(session, post_id)
            rows = []
            for userid in asked:
                if userid in known:
                    continue
                staff = await staff_by_userid(session, userid)
                task = await create_task(session, NewTask(
                    f"moment:{post_id}:publish:{userid}", "moments_publish", heading, now.date(),
                    staff_id=staff.id if staff else None, body=prompt), now)
                session.add(MomentPublisher(post_id=post_id, userid=userid, task_id=task.id))
                rows.append(NewOutboxMessage(
                    f"moment:{post_id}:prompt:{userid}", PLATFORM, userid, "staff_prompt", prompt,
                    staff_id=staff.id if staff else None, meta=prompt_meta(task_page(task.id), heading)))
            await enqueue(session, rows, now)

    # -- moment_read --------------------------------------------------------------------

    async def read_back(self, message: OutboundMessage) -> SendResult:
        async with self._sessions() as session:
            post = await session.get(MomentPost, int(message.meta["post"]))
        if post is None or post.status != "posted" or not post.moment_id:
            return SendResult.sent("nothing to read")
        now = self._clock()
        # A minute either side: WeCom's clock and ours need not agree to the second.
        start = int(post.created_at.timestamp()) - 60
        end = min(int(now.timestamp()) + 60, start + LIST_SPAN)
        listed = post.moment_id in await api.listed_moments(self._client, start, end)
        if not listed and post.listed_at is not None:  # listed before, gone now: deleted
            async with self._sessions() as session, session.begin():
                gone = await session.get(MomentPost, post.id)
                assert gone is not None
                gone.status, gone.read_at = "deleted", now
            return SendResult.sent("the post was deleted in WeCom")
        published = await api.publishers(self._client, post.moment_id)
        reactions = {u: await api.reactions(self._client, post.moment_id, u) for u, done in published.items() if done}
        reached = {u: await moment_receivers(self._client, post.moment_id, u) for u, done in published.items() if done}
        await self._record(post, published, reactions, listed, now, reached)
        return SendResult.sent(f"{sum(published.values())} of {len(published)} published")

    async def _record(
        self, post: MomentPost, published: Mapping[str, bool], reactions: Mapping[str, list[api.Reaction]],
        listed: bool, now: datetime, reached: Mapping[str, list[str]],
    ) -> None:
        assert post.id is not None and post.moment_id is not None
        async with self._sessions() as session, session.begin():
            stored = await session.get(MomentPost, post.id)
            assert stored is not None
            stored.read_at = now
            stored.listed_at = now if listed else stored.listed_at
            known = await publishers_of(session, post.id)
            for userid, done in published.items():
                publisher = known.get(userid) or MomentPublisher(post_id=post.id, userid=userid)
                if done and publisher.published_at is None:
                    publisher.published_at = now
                    task = await session.get(StaffTask, publisher.task_id) if publisher.task_id else None
                    if task is not None and task.status == "open":
                        await close_task(session, task, "done", "已在企业微信发表", now, self._outcome_scheme)
                mine = reactions.get(userid, [])
                publisher.likes = sum(r.kind == "like" for r in mine)
                publisher.comments = sum(r.kind == "comment" for r in mine)
                session.add(publisher)
                for reaction in mine:
                    await self._engagement(session, post, userid, reaction)
                if reached.get(userid) and publisher.published_at is not None:
                    await self._touches(session, post, userid, publisher.published_at, reached[userid])

    async def _touches(self, session: Any, post: MomentPost, userid: str, at: datetime, customers: list[str]) -> None:
        """The customers the post reached as she published it, each a touch of its calendar
        entry by her, once per post (WeCom gives no time: when we saw she had published)."""
        staff = await staff_by_userid(session, userid)
        await record_received(
            session, PLATFORM, TouchSource("entry", post.entry[:64]), staff.id if staff else None,
            [Received(e, at, f"moment:{post.moment_id}:{e}") for e in customers], self._outcome_scheme)

    async def _engagement(self, session: Any, post: MomentPost, userid: str, reaction: api.Reaction) -> None:
        """A customer's like or comment, as an interaction of the member she is (once)."""
        if not reaction.external_userid:
            return  # a colleague's
        member = await member_by_identity(session, PLATFORM, reaction.external_userid)
        if member is None or member.id is None:
            return
        key = f"{post.moment_id}:{userid}:{reaction.kind}:{reaction.external_userid}:{reaction.at}"
        at = datetime.fromtimestamp(reaction.at, timezone.utc) if reaction.at else self._clock()
        await record_interaction(session, member.id, "event", PLATFORM, at, f"{REACTIONS[reaction.kind]}：{post.title}",
                                 "moment:" + hashlib.sha1(key.encode()).hexdigest()[:40])
