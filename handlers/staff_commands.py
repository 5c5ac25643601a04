"""Commands store staff write to the brand's app (WeCom) or the sandbox staff panel:
完成 12 / done 12, 跳过 12 原因 / skip 12 reason, 查 王芳 / find 5678, 任务 / tasks.
Anything else gets a short help text."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from handlers.actions import Action, PromptStaff
from handlers.context import PlatformContext
from handlers.member_card import member_card
from handlers.updates import MessageUpdate, Update
from storage.members import search_members
from storage.models import Staff, StaffTask
from storage.staff import ensure_staff
from storage.tasks import close_task, in_store, open_tasks_of

Verb = Literal["done", "skip", "find", "tasks", "help"]
VERBS: dict[str, Verb] = {
    "完成": "done", "done": "done", "跳过": "skip", "skip": "skip", "查": "find", "find": "find",
    "任务": "tasks", "tasks": "tasks", "帮助": "help", "help": "help",
}
TASK_ID = re.compile(r"#?(\d{1,12})\s*(.*)", re.S)


@dataclass(frozen=True, slots=True)
class Command:
    verb: Verb
    task_id: int | None = None
    text: str = ""  # the skip reason, the search, or what was not understood


def parse_command(text: str) -> Command:
    """Read a staff message; full-width digits and spaces, and case, do not matter."""
    folded = unicodedata.normalize("NFKC", text).strip()
    for word, verb in VERBS.items():
        if not folded.casefold().startswith(word):
            continue
        rest = folded[len(word):]
        if word.isascii() and rest[:1].isalpha():
            continue  # "finder" is not "find"; Chinese verbs may run into what follows
        return _with_arguments(verb, rest.strip(), folded)
    return Command("help", text=folded)


def _with_arguments(verb: Verb, rest: str, said: str) -> Command:
    if verb in ("done", "skip"):
        numbered = TASK_ID.fullmatch(rest)
        if numbered is None:
            return Command("help", text=said)
        return Command(verb, int(numbered.group(1)), numbered.group(2).strip())
    if verb == "find" and not rest:
        return Command("help", text=said)
    return Command(verb, text=rest)


async def handle(update: Update, ctx: PlatformContext) -> Sequence[Action]:
    if not isinstance(update, MessageUpdate) or update.actor != "staff":
        return ()
    staff = await ensure_staff(ctx.session, update.sender)  # whoever writes to the app is staff
    command = parse_command(update.text)
    match command.verb:
        case "done" | "skip":
            template, variables = "staff/task_done.txt.j2", await _close(ctx, staff, command)
        case "find":
            template, variables = "staff/member_card.txt.j2", await _find(ctx, staff, command.text)
        case "tasks":
            tasks = await open_tasks_of(ctx.session, staff.id or 0)
            template, variables = "staff/task_list.txt.j2", {
                "tasks": [{"id": t.id, "due": t.due_date.strftime("%m-%d"), "title": t.title} for t in tasks]
            }
        case _:
            unknown = "" if command.text.casefold() in ("help", "帮助") else command.text
            template, variables = "staff/help.txt.j2", {"unknown": unknown}
    return (PromptStaff(update.platform, staff.userid, ctx.renderer.render(template, variables)),)


async def _close(ctx: PlatformContext, staff: Staff, command: Command) -> dict[str, Any]:
    assert command.task_id is not None
    answer: dict[str, Any] = {"task_id": command.task_id, "problem": None}
    task = await ctx.session.get(StaffTask, command.task_id)
    if task is None:
        return answer | {"problem": "not_found"}
    answer |= {"title": task.title, "status": task.status}
    if task.staff_id != staff.id and not await _manages(ctx, staff, task):
        owner = await ctx.session.get(Staff, task.staff_id) if task.staff_id else None
        return answer | {"problem": "not_yours", "owner": owner.name if owner else None}
    if task.status != "open":
        return answer | {"problem": "closed"}
    if command.verb == "skip" and not command.text:
        return answer | {"problem": "no_reason"}
    status: Literal["done", "skipped"] = "done" if command.verb == "done" else "skipped"
    await close_task(ctx.session, task, status, command.text or None, ctx.now, ctx.config.outcome_scheme)
    return answer | {"status": status, "note": command.text}


async def _manages(ctx: PlatformContext, staff: Staff, task: StaffTask) -> bool:
    """A store manager may close the tasks of the store's staff."""
    return staff.role == "manager" and await in_store(ctx.session, task, staff.store_id)


async def _find(ctx: PlatformContext, staff: Staff, query: str, limit: int = 3) -> dict[str, Any]:
    # Staff see the members they own; a store manager sees the store's.
    store = staff.store_id if staff.role == "manager" else None
    found = await search_members(ctx.session, query, owner_staff_id=staff.id, store_id=store, limit=limit + 1)
    today = ctx.config.local(ctx.now).date()
    return {
        "query": query,
        "members": [await member_card(ctx.session, m, today, ctx.config.zone, ctx.config.layer_labels) for m in found[:limit]],
        "more": len(found) > limit,
    }
