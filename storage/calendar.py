"""The content calendar's storage: its entries (loaded whole, edited one by one, paused
and resumed), the names an audience may use, and what WeCom said of a mass send. Who
an audience is lives in `storage.audiences`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import CalendarEntry, OutboxEntry, Store, Tag


@dataclass(slots=True)
class Changes:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0


# -- entries ---------------------------------------------------------------------------

async def list_entries(session: AsyncSession) -> list[CalendarEntry]:
    return list((await session.execute(select(CalendarEntry).order_by(CalendarEntry.id))).scalars().all())


_COMPARED = ("cron", "at", "audience", "template", "channel", "title", "paused")


async def get_entry(session: AsyncSession, entry_id: str) -> CalendarEntry | None:
    return await session.get(CalendarEntry, entry_id)


async def replace_entries(session: AsyncSession, entries: Sequence[CalendarEntry], now: datetime) -> Changes:
    """Make the calendar exactly `entries` (in the caller's transaction): entries not
    among them are removed; an entry whose content did not change keeps its updated_at."""
    existing = {e.id: e for e in await list_entries(session)}
    changes = Changes()
    wanted = {e.id for e in entries}
    if gone := sorted(set(existing) - wanted):
        await session.execute(delete(CalendarEntry).where(CalendarEntry.id.in_(gone)))  # type: ignore[attr-defined]
        changes.removed = gone
    for entry in entries:
        outcome = _put(session, existing.get(entry.id), entry, now)
        if outcome == "unchanged":
            changes.unchanged += 1
        else:
            (changes.added if outcome == "added" else changes.changed).append(entry.id)
    await session.flush()
    return changes


async def put_entry(session: AsyncSession, entry: CalendarEntry, now: datetime) -> str:
    """Add or change one entry, the rest of the calendar untouched (in the caller's
    transaction): "added", "changed" or "unchanged" (its updated_at kept)."""
    outcome = _put(session, await get_entry(session, entry.id), entry, now)
    await session.flush()
    return outcome


def _put(session: AsyncSession, old: CalendarEntry | None, entry: CalendarEntry, now: datetime) -> str:
    if old is None:
        entry.updated_at = now
        session.add(entry)
        return "added"
    if all(getattr(old, name) == getattr(entry, name) for name in _COMPARED):
        return "unchanged"
    if old.paused and not entry.paused:
        old.resumed_at = now
    for name in _COMPARED:
        setattr(old, name, getattr(entry, name))
    old.updated_at = now
    session.add(old)
    return "changed"


async def set_paused(session: AsyncSession, entry_id: str, paused: bool, now: datetime) -> bool | None:
    """Pause or resume one entry (in the caller's transaction): whether that changed it,
    or None when there is no such entry. Resuming notes the moment, so what fell due
    while paused is never caught up."""
    row = await get_entry(session, entry_id)
    if row is None:
        return None
    if row.paused == paused:
        return False
    row.paused, row.updated_at = paused, now
    if not paused:
        row.resumed_at = now
    session.add(row)
    await session.flush()
    return True


async def unknown_store_codes(session: AsyncSession, codes: Sequence[str]) -> list[str]:
    if not codes:
        return []
    known = set((await session.execute(select(Store.code).where(Store.code.in_(set(codes))))).scalars())  # type: ignore[attr-defined]
    return [code for code in dict.fromkeys(codes) if code not in known]


async def unknown_tag_names(session: AsyncSession, names: Sequence[str]) -> list[str]:
    """The names among `names` no tag has (in any group)."""
    if not names:
        return []
    known = set((await session.execute(select(Tag.name).where(Tag.name.in_(set(names))))).scalars())  # type: ignore[attr-defined]
    return [name for name in dict.fromkeys(names) if name not in known]


async def known_names(session: AsyncSession, limit: int = 200) -> tuple[list[str], list[tuple[str, str]]]:
    """Tag names and (code, name) of stores, for an operator choosing an audience."""
    tags = (await session.execute(select(Tag.name).distinct().order_by(Tag.name).limit(limit))).scalars()
    stores = (await session.execute(select(Store.code, Store.name).order_by(Store.code).limit(limit))).all()
    return list(tags), [(code, name) for code, name in stores]


# -- mass sends ------------------------------------------------------------------------

async def record_mass_send(session: AsyncSession, outbox_id: int, msgid: str, fail_list: Sequence[str]) -> None:
    """Note on the outbox row what WeCom said of a mass send: its msgid and the customers
    it could not reach (fail_list), next to the row's parameters."""
    row = await session.get(OutboxEntry, outbox_id)
    if row is None:
        return
    meta = json.loads(row.meta or "{}")
    meta.update({"msgid": msgid, "fail_list": list(fail_list)})
    await session.execute(
        update(OutboxEntry).where(OutboxEntry.id == outbox_id)  # type: ignore[arg-type]
        .values(meta=json.dumps(meta, ensure_ascii=False))
    )
