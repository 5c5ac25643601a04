"""Previewing the content calendar against the database: what fires in the days ahead,
whom it reaches per layer, what is held back and why, and a rendered sample; and one
entry's preview for the console's editor."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from content_templates.renderer import Renderer, RenderError
from scheduler.calendar import ONE_TEXT, EntrySpec, next_times, occurrences, to_instant, variables
from scheduler.calendar_simulation import Outcome, PreviewPolicy, flags_needed, simulate
from storage import audiences
from storage.engine import SessionFactory


@dataclass(frozen=True, slots=True)
class Preview:
    start: date
    days: int
    outcomes: list[Outcome]
    samples: dict[str, str]  # entry id → one rendered text
    paused: list[str]


async def preview_calendar(
    sessions: SessionFactory,
    entries: Sequence[EntrySpec],
    renderer: Renderer,
    persona: Mapping[str, Any],
    policy: PreviewPolicy,
    cap_scheme: str,
    start: date,
    days: int,
) -> Preview:
    """Which entries fire on each day from `start`, whom they reach per layer, whom they
    hold back and why — counted in SQL by classes of alike members, never member by member."""
    zone = policy.zone
    begin = to_instant(datetime.combine(start, time()), zone) - timedelta(microseconds=1)
    end = to_instant(datetime.combine(start + timedelta(days=days), time()), zone) - timedelta(microseconds=1)
    active = [e for e in entries if not e.paused]
    firings = [(entry, at) for entry in active for at in occurrences(entry, zone, begin, end)]
    firing = {entry.id: entry for entry, _ in firings}
    samples: dict[str, str] = {}
    async with sessions() as session:
        resolved = {entry_id: await audiences.resolve(session, entry.audience) for entry_id, entry in firing.items()}
        classes = await audiences.member_classes(session, resolved, cap_scheme, sorted(flags_needed(firing.values())))
        reached = {name for member_class in classes for name in member_class.entries}
        for entry_id, entry in firing.items():
            sample = await audiences.sample_member(session, resolved[entry_id]) if entry_id in reached else None
            samples[entry_id] = sample_text(renderer, persona, entry, sample)
    # A month of firings over thousands of classes is a few hundred thousand steps of
    # Python: on a thread, the event loop keeps answering meanwhile.
    outcomes = await asyncio.to_thread(simulate, classes, firings, policy)
    return Preview(start, days, outcomes, samples, [e.id for e in entries if e.paused])


MADE_UP = ("王芳", "示例门店")  # the sample member when the audience holds no one


def sample_text(renderer: Renderer, persona: Mapping[str, Any], entry: EntrySpec,
                sample: tuple[str | None, str | None] | None) -> str:
    """The entry's text for one member (name, store), or for a made-up one; one text for
    many carries no member's name."""
    name, store_name = sample or MADE_UP
    try:
        return renderer.render(entry.template, variables(persona, None if entry.channel in ONE_TEXT else name, store_name))
    except RenderError as error:
        return f"(cannot render: {error})"


@dataclass(frozen=True, slots=True)
class EntryPreview:
    """One entry as the console shows it while it is written."""

    text: str  # rendered for `sample`
    sample: tuple[str | None, str | None] | None  # a real audience member's name and store; None: made up
    upcoming: list[datetime]  # the next fire times, in the brand's zone
    outcome: Outcome  # the next occurrence (or one now, if none is left) as the preview counts it


async def preview_entry(
    sessions: SessionFactory, entry: EntrySpec, renderer: Renderer, persona: Mapping[str, Any],
    policy: PreviewPolicy, cap_scheme: str, now: datetime, classes: Sequence[audiences.MemberClass] | None = None,
) -> EntryPreview:
    """The text for a sample member of the audience, the next five times, and whom the
    next occurrence reaches and holds back (before weekly caps: one send alone never
    meets them) — counted as the preview counts, in one pass over the members (none when
    `classes`, from `entry_classes`, are given)."""
    upcoming = next_times(entry, policy.zone, now)
    if classes is None:
        classes = await entry_classes(sessions, entry, cap_scheme)
    async with sessions() as session:
        sample = await audiences.sample_member(session, await audiences.resolve(session, entry.audience)) if classes else None
    (outcome,) = simulate(classes, [(entry, upcoming[0] if upcoming else now)], policy)
    return EntryPreview(sample_text(renderer, persona, entry, sample), sample,
                        [at.astimezone(policy.zone) for at in upcoming], outcome)


async def entry_classes(sessions: SessionFactory, entry: EntrySpec, cap_scheme: str) -> list[audiences.MemberClass]:
    """The members of one entry's audience in the preview's classes (they depend on its
    id, channel and audience only)."""
    async with sessions() as session:
        resolved = await audiences.resolve(session, entry.audience)
        return await audiences.member_classes(session, {entry.id: resolved}, cap_scheme, sorted(flags_needed([entry])))
