"""The daily engagement snapshot: each layer's day, per scheme, into engagement_days.

Run by a cron job for yesterday (now complete) and today (so far); rerunning a day
replaces its rows, so catching up after downtime is just running the missed days.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from storage.engagement import snapshot_day
from storage.engine import SessionFactory


def recent_days(now: datetime, zone: ZoneInfo) -> tuple[date, date]:
    """Yesterday and today in the brand's time zone: what the daily job snapshots."""
    today = now.astimezone(zone).date()
    return today - timedelta(days=1), today


async def snapshot_engagement(
    sessions: SessionFactory, schemes: Sequence[str], days: Sequence[date], zone: ZoneInfo, now: datetime
) -> int:
    """Snapshot every (scheme, day), one transaction each; returns the rows written."""
    written = 0
    for scheme in schemes:
        for day in days:
            async with sessions() as session, session.begin():
                written += await snapshot_day(session, scheme, day, zone, now)
    return written


async def snapshot_recent(sessions: SessionFactory, schemes: Sequence[str], zone: ZoneInfo, now: datetime) -> int:
    """The daily job: yesterday (now complete) and today (so far) of every scheme."""
    return await snapshot_engagement(sessions, schemes, recent_days(now, zone), zone, now)
