"""Loading a TOML file's configuration into the database beside the console's edits.

The file bootstraps the documents and stays the way to version-control them; the console
edits them afterwards. Loading a file must not silently undo an operator's work: a
document the console changed since, which the file would change again, is a conflict —
`siyu config load` asks (or takes `--yes`); a server starting keeps the console's version
and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.settings.documents import apply_documents, documents_of
from bot.settings.model import Settings
from storage.config_docs import canonical, current_documents, last_from_file, save_documents
from storage.engine import SessionFactory


@dataclass(slots=True)
class LoadPlan:
    write: dict[str, Any] = field(default_factory=dict)  # documents the file changes
    conflicts: list[str] = field(default_factory=list)  # of those, the ones the console changed


async def plan_load(sessions: SessionFactory, bodies: Mapping[str, Any], *, at_start: bool) -> LoadPlan:
    """What loading the documents `bodies` would write. At start, a document whose file
    text has not changed since it was last loaded is left alone (the console's version
    stands)."""
    async with sessions() as session:
        current = await current_documents(session)
        from_file = await last_from_file(session)
    plan = LoadPlan()
    for name, body in bodies.items():
        now = current.get(name)
        if now is not None and canonical(now.body) == canonical(body):
            continue
        if at_start and name in from_file and canonical(from_file[name].body) == canonical(body):
            continue  # the file is as it was loaded; whatever the database holds since stands
        plan.write[name] = body
        if now is not None and now.source != "toml":
            plan.conflicts.append(name)
    return plan


async def apply_load(sessions: SessionFactory, plan: LoadPlan, author: str, *, overwrite: bool) -> list[str]:
    """Write the plan (without its conflicts unless `overwrite`); the names written."""
    bodies = {n: b for n, b in plan.write.items() if overwrite or n not in plan.conflicts}
    async with sessions() as session:
        changed = await save_documents(session, bodies, source="toml", author=author)
        await session.commit()
    return changed


async def settings_in_force(sessions: SessionFactory, base: Settings) -> Settings:
    """The file's settings with the database's documents over them (as a server runs)."""
    async with sessions() as session:
        documents = await current_documents(session)
    return apply_documents(base, {name: d.body for name, d in documents.items()})


async def held_documents(sessions: SessionFactory, base: Settings) -> dict[str, Any]:
    """Every document as the database holds it; the file's for those it never held."""
    async with sessions() as session:
        documents = await current_documents(session)
    return documents_of(base) | {name: d.body for name, d in documents.items()}
