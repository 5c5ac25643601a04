"""The daily layer job: every scheme recomputed (incrementally unless asked otherwise),
each in its own transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

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
        async with sessions() as session, session.begin():
            reports.append(await recompute(
                session, scheme, rfm, now, now.astimezone(zone).date(), renderer.render, full=full
            ))
    return reports
