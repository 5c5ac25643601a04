"""The JSON API, behind a bearer token (`server.api_token`).

GET /api/engagement?scheme=S&days=N — each layer's daily engagement for the N local days
ending today (every day listed, empty where no snapshot ran), and the current pyramid.

GET /api/outcomes?by=entry&from=YYYY-MM-DD&to=YYYY-MM-DD — the outcomes report (成效):
per source, reached and held out, conversion and revenue per member, the lift and its
95 % interval or 数据不足 (by: entry, occasion, channel, staff, store, layer, source;
default the 30 local days ending yesterday).
"""

from __future__ import annotations

import hmac
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web

from bot.shared.keys import SESSIONS
from bot.shared.live_config import live
from bot.shared.outcomes_report import last_days, names_for, outcomes_report
from storage.engagement import COUNTERS, engagement_series, layer_counts
from storage.models import utcnow
from storage.outcomes import DIMENSIONS

DEFAULT_DAYS = 30
MAX_DAYS = 366


def _error(status: int, message: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="siyu"'} if status == 401 else None
    return web.json_response({"error": message}, status=status, headers=headers)


def add_api_routes(app: web.Application, token: str) -> None:
    """Serve /api/… on `app`, answering only requests that bear `token`."""
    if not token:
        raise ValueError("the API needs a token")
    expected = token.encode()

    def authorized(request: web.Request) -> bool:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # Compared in constant time, always: how far a guess matched must not show.
        return hmac.compare_digest(given.strip().encode(), expected) and scheme.lower() == "bearer"

    async def engagement(request: web.Request) -> web.Response:
        if not authorized(request):
            return _error(401, "missing or wrong bearer token")
        scheme = request.query.get("scheme", "").strip()
        if not scheme:
            return _error(400, "scheme is required, e.g. ?scheme=value")
        try:
            days = int(request.query.get("days", str(DEFAULT_DAYS)))
        except ValueError:
            return _error(400, "days must be a whole number")
        if not 1 <= days <= MAX_DAYS:
            return _error(400, f"days must be 1 to {MAX_DAYS}")
        today = datetime.now(live(request).settings.zone).date()
        first = today - timedelta(days=days - 1)
        async with request.app[SESSIONS]() as session:
            rows = await engagement_series(session, scheme, first, today)
            pyramid = await layer_counts(session, scheme)
        by_day: dict[str, dict[str, Any]] = {(first + timedelta(days=n)).isoformat(): {} for n in range(days)}
        for row in rows:
            by_day[row.day.isoformat()][row.layer] = {name: getattr(row, name) for name in COUNTERS}
        return web.json_response({
            "scheme": scheme,
            "days": [{"day": day, "layers": layers} for day, layers in by_day.items()],
            "pyramid": pyramid,
        })

    async def outcomes(request: web.Request) -> web.Response:
        if not authorized(request):
            return _error(401, "missing or wrong bearer token")
        settings = live(request).settings
        by = request.query.get("by", "entry")
        if by not in DIMENSIONS:
            return _error(400, f"by must be one of {', '.join(DIMENSIONS)}")
        try:
            end = date.fromisoformat(request.query["to"]) if "to" in request.query else \
                last_days(utcnow(), settings.zone)[1]
            start = date.fromisoformat(request.query["from"]) if "from" in request.query else end - timedelta(days=29)
        except ValueError:
            return _error(400, "from and to must be days like 2026-11-01")
        if end < start or (end - start).days >= MAX_DAYS:
            return _error(400, f"from must not be after to, and the range at most {MAX_DAYS} days")
        report = await outcomes_report(request.app[SESSIONS], settings.outcomes, settings.zone, by, start, end,
                                        names_for(settings, by))
        return web.json_response(report.to_json())

    app.router.add_get("/api/engagement", engagement)
    app.router.add_get("/api/outcomes", outcomes)
