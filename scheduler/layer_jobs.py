"""The daily layer job: every scheme recomputed (incrementally unless asked otherwise),
each in its own transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.exc import OperationalError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from content_templates.renderer import Renderer
from scheduler.layer_recompute import RecomputeReport, recompute
from scheduler.layer_rules import RfmSpec, Scheme
from storage.engine import SessionFactory


async def recompute_layers(
    sessions: SessionFactory,
    schemes: Sequence[Scheme],
    rfm: RfmSpec,
    renderer: Renderer,
    zone: ZoneInfo,
    now: datetime,
    *,
    full: bool = False,
) -> list[RecomputeReport]:
    reports = []
    for scheme in schemes:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_refused_for_a_newer_snapshot), stop=stop_after_attempt(4),
            wait=wait_exponential(multiplier=0.2, max=2), reraise=True,
        ):
            with attempt:
                async with sessions() as session, session.begin():
                    report = await recompute(
                        session, scheme, rfm, now, now.astimezone(zone).date(), renderer.render, full=full
                    )
        reports.append(report)
    return reports


def _refused_for_a_newer_snapshot(error: BaseException) -> bool:
    """SQLite refuses at once, without waiting, a transaction that read first and writes
    later when another connection committed in between (the inbox writer, taking
    callbacks): the recompute fills its temporary tables from the database before it
    writes there. The whole scheme's transaction rolled back; it is simply run again."""
    return isinstance(error, OperationalError) and "database is locked" in str(error)
