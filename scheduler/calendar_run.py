"""The content calendar against the database: firing due entries into the outbox and
staff tasks, and loading, saving and pausing entries (the preview is in
`scheduler.calendar_preview`).

Firing is a rescan, never one job per entry: every minute the fixed job reads the
entries as they are now (a change from the console or `siyu calendar load` applies at
the next scan) and enqueues each occurrence since the last scan. Every row's dedupe key
names the entry, the occurrence and the member or staff member, so a rerun, a crash
mid-run or a catch-up after downtime sends nothing twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from content_templates.renderer import Renderer, RenderError
from handlers.outbound import prompt_meta, task_page
from scheduler import mass_attachments, moments
from scheduler.calendar import CalendarContext, EntrySpec, due, name_problems, occurrence_key, parse_calendar, variables
from scheduler.holdout import held_out, in_global_control
from storage import audiences
from storage import calendar as store
from storage.metrics import count_hold
from storage.cursors import load_cursor, save_cursor
from storage.engine import SessionFactory
from storage.outbox import NewOutboxMessage, enqueue, mass_sends_since
from storage.outcomes import TouchSource, record_holdouts
from storage.segments import unknown_segment_names
from storage.staff import active_staff_of_stores
from storage.tags import tags_named_in
from storage.tasks import NewTask, create_task, create_tasks

log = logging.getLogger(__name__)
CURSOR = "calendar:last_scan"
PLATFORM = {"kf": "wecom", "oa": "oa", "wecom_mass": "wecom", "wecom_group_mass": "wecom"}
MAX_EXTERNAL_IDS = 10_000  # add_msg_template: external_userid, at most
MAX_CHATS = 2_000  # add_msg_template: chat_id_list, at most
KF_WINDOW = timedelta(hours=48)


@dataclass(frozen=True, slots=True)
class CalendarOptions:
    persona: Mapping[str, Any]
    catch_up: timedelta = timedelta(hours=24)  # occurrences missed longer ago are let go
    catch_up_max: int = 1  # of each entry, at most this many missed occurrences fire
    batch_size: int = 1000
    prompt_template: str = "calendar/mass_prompt.txt.j2"
    wecom_mass_per_month: int | None = None  # customers who had this many are left out
    media_dir: Path = Path("media")  # a Moments post's image files
    moments_prompt_template: str = "calendar/moments_publish.txt.j2"
    global_control: float = 0.0  # the brand-wide control group's share: no calendar marketing
    outcome_scheme: str = "value"  # the layer scheme a holdout records


@dataclass(slots=True)
class Fired:
    entry: str
    at: datetime
    channel: str
    members: int = 0  # members the rows and tasks reach
    held_out: int = 0  # members held out (the entry's holdout share, the global control group)
    rows: int = 0  # outbox rows or staff tasks written (a rerun writes the same keys: no new ones)
    skipped: dict[str, int] = field(default_factory=dict)  # reason → members
    error: str | None = None

    def skip(self, reason: str, count: int = 1) -> None:
        if count:
            self.skipped[reason] = self.skipped.get(reason, 0) + count


@dataclass(frozen=True, slots=True)
class CalendarReport:
    since: datetime
    until: datetime
    fired: list[Fired]
    let_go: int  # occurrences in the catch-up window beyond catch_up_max

    def __str__(self) -> str:
        return f"{len(self.fired)} occurrences fired, {sum(f.members for f in self.fired)} members, {self.let_go} let go"


async def run_calendar(
    sessions: SessionFactory,
    options: CalendarOptions,
    renderer: Renderer,
    zone: ZoneInfo,
    now: datetime,
    since: datetime | None = None,
) -> CalendarReport:
    """Fire every occurrence in (since, now]; `since` defaults to the last scan (kept in
    the cursor "calendar:last_scan"), or a minute ago on the very first scan."""
    async with sessions() as session:
        cursor = await load_cursor(session, CURSOR)
        entries = [EntrySpec.of(row) for row in await store.list_entries(session)]
    if since is None:
        since = datetime.fromisoformat(cursor) if cursor else now - timedelta(minutes=1)
    firings, let_go = due(entries, zone, since, now, options.catch_up, options.catch_up_max)
    fired = []
    for entry, at in firings:
        report = Fired(entry.id, at, entry.channel)
        try:
            await _fire(sessions, options, renderer, zone, entry, at, now, report)
        except RenderError as error:  # the template changed since the calendar was loaded
            report.error = str(error)
            log.error("calendar entry %s at %s not sent: %s", entry.id, at, error)
        fired.append(report)
    async with sessions() as session, session.begin():
        if not cursor or datetime.fromisoformat(cursor) < now:
            await save_cursor(session, CURSOR, now.isoformat(), now)
    return CalendarReport(since, now, fired, let_go)


async def _fire(
    sessions: SessionFactory, options: CalendarOptions, renderer: Renderer, zone: ZoneInfo,
    entry: EntrySpec, at: datetime, now: datetime, report: Fired,
) -> None:
    key = occurrence_key(entry.id, at, zone)
    async with sessions() as session:
        resolved = await audiences.resolve(session, entry.audience)
    if entry.channel == moments.CHANNEL:
        await _to_moments(sessions, options, renderer, entry, key, now, report)
    elif entry.channel in ("kf", "oa"):
        await _to_members(sessions, options, renderer, entry, resolved, key, now, report)
    elif entry.channel == "wecom_group_mass":
        await _to_groups(sessions, options, renderer, entry, resolved, key, now, report)
    else:
        await _to_owners(sessions, options, renderer, entry, resolved, key, at.astimezone(zone), now, report)


async def _to_moments(
    sessions: SessionFactory, options: CalendarOptions, renderer: Renderer, entry: EntrySpec, key: str,
    now: datetime, report: Fired,
) -> None:
    """One Moments post for the corp (route moment_task): WeCom shows it to the customers
    with the audience's tags (as corp tags) and hands it to the staff who must publish it
    (the audience's stores' staff, else those WeCom picks); the sender prompts each."""
    text = renderer.render(entry.template, variables(options.persona, None, None))
    async with sessions() as session:
        tags = await tags_named_in(session, entry.audience.tags)
        senders = await active_staff_of_stores(session, entry.audience.stores) if entry.audience.stores else []
    if entry.audience.stores and not senders:
        report.skip("no_staff_in_stores")
        return
    folder = options.media_dir
    link = entry.link
    meta = {
        "entry": entry.id, "title": entry.title or entry.id, "tags": tags, "senders": senders,
        "images": [str(folder / name) for name in entry.images],
        "link": {"title": link.title, "url": link.url, "cover": str(folder / link.cover)} if link else None,
        "prompt": renderer.render(options.moments_prompt_template, {
            "persona": options.persona, "title": entry.title or entry.id, "text": text,
            "images": len(entry.images), "link": link is not None,
        }),
    }
    row = NewOutboxMessage(f"{key}:moments", "wecom", "moments", "marketing", text, route="moment_task",
                           meta=json.dumps(meta, ensure_ascii=False))
    async with sessions() as session, session.begin():
        await enqueue(session, [row], now)
    report.rows += 1


async def _to_members(
    sessions: SessionFactory, options: CalendarOptions, renderer: Renderer, entry: EntrySpec,
    resolved: audiences.Resolved, key: str, now: datetime, report: Fired,
) -> None:
    """One row per member, in her words (name, store), to her id on the platform."""
    platform, after = PLATFORM[entry.channel], 0
    conversations: dict[str, str] = {}
    if entry.channel == "kf":  # Customer Service replies only within 48 h of her last message
        async with sessions() as session:
            conversations = await audiences.kf_conversations(session, platform, now - KF_WINDOW)
    while True:
        async with sessions() as session:
            page = await audiences.recipients(session, resolved, platform, after, options.batch_size)
        if not page:
            return
        after = page[-1].member_id
        rows = []
        held: list[int] = []
        for member in page:
            meta: dict[str, str] = {"entry": entry.id}
            if member.external_id is None:
                report.skip(f"no_{platform}_id")
                continue
            if member.opted_out:
                report.skip("opted_out")
                continue
            if entry.channel == "kf":
                if member.external_id not in conversations:
                    report.skip("no_kf_conversation")
                    continue
                meta["conversation"] = conversations[member.external_id]
            # Held out after the skips, so both groups are members the entry could reach.
            if in_global_control(member.member_id, options.global_control) or \
                    held_out(member.member_id, f"entry:{entry.id}", key, entry.holdout):
                held.append(member.member_id)
                continue
            body = renderer.render(entry.template, variables(options.persona, member.name, member.store))
            rows.append(NewOutboxMessage(
                f"{key}:m{member.member_id}", platform, member.external_id, "marketing", body,
                member_id=member.member_id, meta=json.dumps(meta, ensure_ascii=False),
            ))
        async with sessions() as session, session.begin():
            await enqueue(session, rows, now)
            await record_holdouts(session, held, now, TouchSource("entry", entry.id), key, options.outcome_scheme)
        report.held_out += len(held)
        report.members += len(rows)
        report.rows += len(rows)


async def _to_owners(
    sessions: SessionFactory, options: CalendarOptions, renderer: Renderer, entry: EntrySpec,
    resolved: audiences.Resolved, key: str, local: datetime, now: datetime, report: Fired,
) -> None:
    """wecom_mass: one mass send per owning staff member (she confirms it in WeCom), and a
    prompt telling her so. staff_task: one task per owning staff member. `local`: the
    occurrence in the brand's time zone."""
    day = local.date()
    async with sessions() as session:
        staff, opted_out, unowned = await audiences.owners(session, resolved)
    report.skip("opted_out", opted_out)
    report.skip("no_owner", unowned)
    owned: dict[int, list[str]] = {}
    received: Counter[str] = Counter()
    if entry.channel == "wecom_mass" and staff:
        async with sessions() as session:
            owned = await audiences.owned_external_ids(session, resolved, "wecom")
            if options.wecom_mass_per_month:
                month_start = datetime.combine(day.replace(day=1), time(0), local.tzinfo)  # the brand's month
                received = await mass_sends_since(session, month_start)
    tasks = []
    for owner in staff:
        if not owner.active:
            report.skip("owner_inactive", owner.members)
            continue
        body = renderer.render(entry.template, variables(options.persona, None, owner.store))
        if entry.channel == "staff_task":
            tasks.append(NewTask(f"{key}:s:{owner.userid}", "moments_post", f"发朋友圈/客户群：{entry.title or entry.id}"[:256],
                                 day, staff_id=owner.staff_id, body=body))
            report.members += owner.members
            continue
        ids = owned.get(owner.staff_id, [])
        report.skip("no_wecom_id", owner.members - len(ids))
        if options.wecom_mass_per_month:
            allowed = [i for i in ids if received[i] < options.wecom_mass_per_month]
            report.skip("wecom_monthly_cap", len(ids) - len(allowed))
            count_hold("monthly_cap", len(ids) - len(allowed))
            ids = allowed
        if ids:
            await _mass_send(sessions, options, renderer, entry, key, owner.userid, owner.staff_id, body,
                             "single", ids, now, report)
            report.members += len(ids)
    if tasks:
        async with sessions() as session, session.begin():
            await create_tasks(session, tasks, now)
        report.rows += len(tasks)


async def _to_groups(
    sessions: SessionFactory, options: CalendarOptions, renderer: Renderer, entry: EntrySpec,
    resolved: audiences.Resolved, key: str, now: datetime, report: Fired,
) -> None:
    async with sessions() as session:
        owners = await audiences.group_owners(session, resolved, PLATFORM[entry.channel])
    for owner in owners:
        body = renderer.render(entry.template, variables(options.persona, None, owner.store))
        await _mass_send(sessions, options, renderer, entry, key, owner.userid, owner.staff_id, body,
                         "group", list(owner.chat_ids), now, report)
        report.members += owner.members


def _sent_attachments(entry: EntrySpec, folder: Path) -> dict[str, Any]:
    """A mass send's attachments as its row carries them: image files by their path."""
    found = entry.mass.to_json()
    if "images" in found:
        found["images"] = [str(folder / name) for name in found["images"]]
    if "miniprogram" in found:
        found["miniprogram"]["cover"] = str(folder / found["miniprogram"]["cover"])
    return found


async def _mass_send(
    sessions: SessionFactory, options: CalendarOptions, renderer: Renderer, entry: EntrySpec, key: str,
    userid: str, staff_id: int | None, body: str, chat_type: str, targets: Sequence[str], now: datetime, report: Fired,
) -> None:
    """The mass-send rows (split at WeCom's limits), a task to confirm them (due the day of
    the occurrence) and the prompt, which links to the task."""
    size, target_key = (MAX_EXTERNAL_IDS, "external_userid") if chat_type == "single" else (MAX_CHATS, "chat_id_list")
    rows = [
        NewOutboxMessage(
            f"{key}:s:{userid}" + (f":{n // size + 1}" if n else ""), "wecom", userid, "marketing", body,
            staff_id=staff_id, route="mass_send",
            meta=json.dumps({"chat_type": chat_type, target_key: list(targets[n:n + size]), "entry": entry.id}
                            | ({"attachments": _sent_attachments(entry, options.media_dir)} if entry.mass else {}),
                            ensure_ascii=False),
        )
        for n in range(0, len(targets), size)
    ]
    prompt = renderer.render(options.prompt_template, {
        "persona": options.persona, "title": entry.title or entry.id, "chat_type": chat_type,
        "count": len(targets), "text": body,
    })
    title = f"群发确认：{entry.title or entry.id}"[:256]
    day = datetime.strptime(key.rsplit(":", 1)[-1], "%Y%m%dT%H%M").date()  # occurrence_key ends with local time
    async with sessions() as session, session.begin():
        task = await create_task(session, NewTask(f"{key}:s:{userid}:confirm", "mass_send_confirm", title, day,
                                                  staff_id=staff_id, body=prompt), now)
        rows.append(NewOutboxMessage(
            f"{key}:s:{userid}:prompt", "wecom", userid, "staff_prompt", prompt, staff_id=staff_id,
            meta=prompt_meta(task_page(task.id), title),
        ))
        await enqueue(session, rows, now)
    report.rows += len(rows) + 1  # and the task


# -- load and export -------------------------------------------------------------------

async def load_calendar(
    sessions: SessionFactory, text: str, where: str, context: CalendarContext, now: datetime
) -> tuple[store.Changes | None, list[str]]:
    """Make the calendar exactly the file, in one transaction; or change nothing and
    return every problem found."""
    entries, problems = parse_calendar(text, where, context)
    if problems:
        return None, problems
    media = [await media_checked(entry, context.media_dir) for entry in entries]
    async with sessions() as session, session.begin():
        for n, found in enumerate(await _names_unknown(session, entries, context.known_tags)):
            problems.extend(f'{where}: entries[{n}] (id "{entries[n].id}"): {problem}' for problem in found + media[n])
        if problems:
            return None, problems
        changes = await store.replace_entries(session, [entry.row() for entry in entries], now)
    return changes, []


async def _names_unknown(session: AsyncSession, entries: Sequence[EntrySpec], known_tags: Collection[str]) -> list[list[str]]:
    """Per entry, the store codes and tags in its audience nothing knows (one query each)."""
    stores = set(await store.unknown_store_codes(session, [c for e in entries for c in e.audience.stores]))
    named = [t for e in entries for t in (*e.audience.tags, *e.audience.exclude_tags) if t not in known_tags]
    tags = set(await store.unknown_tag_names(session, named))
    segments = set(await unknown_segment_names(session, [e.audience.segment for e in entries if e.audience.segment]))
    return [name_problems(entry, stores, tags, segments) for entry in entries]


async def media_checked(entry: EntrySpec, media_dir: Path) -> list[str]:
    """An entry's image files (a Moments post's, a mass send's) against WeCom's limits
    (read off the event loop)."""
    problems = []
    if entry.images or entry.link is not None:
        problems += await asyncio.to_thread(moments.media_problems, media_dir, entry.images, entry.link)
    if entry.mass:
        problems += await asyncio.to_thread(mass_attachments.media_problems, media_dir, entry.mass)
    return problems


async def entry_problems(
    sessions: SessionFactory, entry: EntrySpec, known_tags: Collection[str], new: bool, media_dir: Path = Path("media")
) -> list[str]:
    """What loading would find wrong with `entry` beyond the entry itself: unknown store
    codes and tags, image files WeCom would refuse, and (for a new entry) an id another
    entry has."""
    media = await media_checked(entry, media_dir)
    async with sessions() as session:
        return await _entry_problems(session, entry, known_tags, new) + media


async def _entry_problems(session: AsyncSession, entry: EntrySpec, known_tags: Collection[str], new: bool) -> list[str]:
    problems = (await _names_unknown(session, [entry], known_tags))[0]
    if new and await store.get_entry(session, entry.id) is not None:
        problems.insert(0, taken(entry.id))
    return problems


def taken(entry_id: str) -> str:
    return f'id: "{entry_id}" is taken by another entry'


async def save_entry(
    sessions: SessionFactory, entry: EntrySpec, known_tags: Collection[str], now: datetime, new: bool,
    media_dir: Path = Path("media"),
) -> tuple[str | None, list[str]]:
    """Store one checked entry (`new`: it must not exist yet; else it replaces the entry
    with its id), by the rules of loading a file and leaving every other entry as it is:
    ("added" | "changed" | "unchanged", []), or (None, the problems) and nothing changed."""
    media = await media_checked(entry, media_dir)
    async with sessions() as session, session.begin():
        if problems := await _entry_problems(session, entry, known_tags, new) + media:
            return None, problems
        if not new and await store.get_entry(session, entry.id) is None:
            return None, [f'id: there is no entry "{entry.id}" any more']
        return await store.put_entry(session, entry.row(), now), []


async def set_paused(sessions: SessionFactory, entry_id: str, paused: bool, now: datetime) -> bool | None:
    """Pause or resume an entry: whether it changed (None: no such entry)."""
    async with sessions() as session, session.begin():
        return await store.set_paused(session, entry_id, paused, now)


async def calendar_entries(sessions: SessionFactory) -> list[EntrySpec]:
    async with sessions() as session:
        return [EntrySpec.of(row) for row in await store.list_entries(session)]
