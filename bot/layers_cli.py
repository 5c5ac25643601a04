"""`siyu layers recompute`: layers computed now, by hand (the daily job does the same)."""

from __future__ import annotations

import sys
import time

from bot.app import renderer_for
from bot.config import Settings
from bot.inspect_cli import open_sessions
from bot.output import print_json, print_table
from scheduler.layer_jobs import recompute_layers
from storage.models import utcnow


async def layers_recompute(settings: Settings, scheme: str | None, full: bool, as_json: bool) -> int:
    schemes = [s.scheme() for s in settings.layers.schemes if scheme in (None, s.name)]
    if not schemes:
        known = ", ".join(s.name for s in settings.layers.schemes)
        print(f"siyu: no layer scheme {scheme!r} (configured: {known})", file=sys.stderr)
        return 1
    started = time.perf_counter()
    async with open_sessions(settings) as sessions:
        reports = await recompute_layers(
            sessions, schemes, settings.layers.rfm.spec(), renderer_for(settings), settings.zone, utcnow(), full=full
        )
    seconds = time.perf_counter() - started
    rows = [{"scheme": r.scheme, "full": r.full, "members": r.members, "moves": r.moves, "tasks": r.tasks}
            for r in reports]
    if as_json:
        print_json({"schemes": rows, "seconds": round(seconds, 2)})
    else:
        print_table(f"layers recomputed in {seconds:.1f} s", ("scheme", "run", "members", "moved", "tasks"),
                    [(r["scheme"], "full" if r["full"] else "incremental", r["members"], r["moves"], r["tasks"])
                     for r in rows])
    return 0
