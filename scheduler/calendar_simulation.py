"""The calendar preview's simulation, as pure logic: for each firing, whom it reaches and
whom delivery would hold back and why (opt-out, no identity on the channel, weekly cap,
quiet hours), over classes of members rather than members one by one."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler.calendar import MEMBER_MARKETING, EntrySpec
from scheduler.policy import QuietHours
from storage.audiences import MemberClass


@dataclass(frozen=True, slots=True)
class PreviewPolicy:
    zone: ZoneInfo
    quiet: QuietHours | None
    weekly_caps: Mapping[str, int]
    default_cap: int | None

    def cap(self, layer: str) -> int | None:
        return self.weekly_caps.get(layer, self.default_cap)


@dataclass(slots=True)
class Outcome:
    entry: EntrySpec
    at: datetime
    audience: int = 0
    reached: int = 0
    by_layer: dict[str, int] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)  # reason → members
    deferred: int = 0  # reached, but after the quiet hours
    deferred_until: datetime | None = None

    @property
    def day(self) -> date:
        return self.at.date()


# A Moments post reaches the customers with its tags on WeCom (corp tags), through staff.
_NEEDS = {"kf": ("wecom",), "oa": ("oa",), "wecom_mass": ("wecom", "owner"), "staff_task": ("owner",),
          "wecom_group_mass": ("group",), "wecom_moments": ("wecom",)}
_MISSING = {"wecom": "no_wecom_id", "oa": "no_oa_id", "owner": "no_owner", "group": "in_no_group"}


def flags_needed(entries: Iterable[EntrySpec]) -> set[str]:
    return {flag for entry in entries for flag in _NEEDS[entry.channel]}


def simulate(classes: Sequence[MemberClass], firings: Sequence[tuple[EntrySpec, datetime]], policy: PreviewPolicy) -> list[Outcome]:
    """What each firing reaches, and what it holds back and why, class by class (every
    member of a class fares alike). Caps count what the preview itself schedules within
    7 days before each send, as the delivery gate counts what was sent."""
    sent: defaultdict[int, list[datetime]] = defaultdict(list)
    outcomes = []
    for entry, at in sorted(firings, key=lambda pair: (pair[1], pair[0].id)):
        outcome = Outcome(entry, at.astimezone(policy.zone))
        until = policy.quiet.until(outcome.at) if policy.quiet and entry.channel in MEMBER_MARKETING else None
        send_at = until or outcome.at
        for n, member_class in enumerate(classes):
            if entry.id not in member_class.entries:
                continue
            count = member_class.members
            outcome.audience += count
            missing = [flag for flag in _NEEDS[entry.channel] if flag not in member_class.flags]
            reason = _MISSING[missing[0]] if missing else None
            if reason is None and member_class.opted_out and entry.channel != "wecom_group_mass":
                reason = "opted_out"
            if reason is None and entry.channel in MEMBER_MARKETING:
                cap = policy.cap(member_class.layer)
                week = sum(1 for t in sent[n] if send_at - timedelta(days=7) <= t < send_at)
                if cap is not None and week >= cap:
                    reason = "weekly_cap"
                else:
                    sent[n].append(send_at)
            if reason is not None:
                outcome.held[reason] = outcome.held.get(reason, 0) + count
                continue
            outcome.reached += count
            layer = member_class.layer or "(none)"
            outcome.by_layer[layer] = outcome.by_layer.get(layer, 0) + count
            if until is not None:
                outcome.deferred += count
                outcome.deferred_until = until
        outcomes.append(outcome)
    return outcomes
