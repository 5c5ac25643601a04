"""`siyu layers recompute` (layers computed now, as the daily job does) and
`siyu layers show` (the pyramid and week over week)."""

from __future__ import annotations

import asyncio
import sys
import time

from bot.app import renderer_for
from bot.config import Settings
from bot.inspect_cli import open_sessions
from bot.layers_show import layers_show
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


def show(settings: Settings, scheme_name: str | None, as_json: bool) -> int:
    configured = settings.layers.schemes
    chosen = next((s for s in configured if scheme_name in (None, s.name)), None)
    if chosen is None:
        print(f"siyu: no layer scheme {scheme_name!r} (configured: {', '.join(s.name for s in configured)})",
              file=sys.stderr)
        return 1
    return asyncio.run(layers_show(settings, chosen.name, chosen.scheme().order(), as_json))
