"""GET /metrics: this process's Prometheus metrics (storage/metrics.py), and what waits in
the database (storage/backlog.py), read as Prometheus scrapes.

Served only when `[metrics] enabled`; on the main server, or, with `[metrics] port`, on a
bind of its own that never answers anything else. Each process serves its own figures
(no shared multiprocess directory): Prometheus scrapes every process, and the dashboard
adds them up (docs/deploy.md, "Metrics").
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from bot.settings.model import MetricsSettings
from bot.shared.keys import SESSIONS
from storage.backlog import BACKLOG
from storage.models import utcnow

log = logging.getLogger(__name__)


def add_metrics(app: web.Application, settings: MetricsSettings) -> None:
    if not settings.enabled:
        return
    if settings.port is None:
        app.router.add_get("/metrics", metrics)
        return

    async def own_bind(app: web.Application) -> AsyncIterator[None]:
        async def metrics_of_app(_request: web.Request) -> web.Response:
            return await metrics_response(app)

        side = web.Application()
        side.router.add_get("/metrics", metrics_of_app)
        runner = web.AppRunner(side, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.host, settings.port).start()
        log.info("metrics at http://%s:%s/metrics", settings.host, settings.port)
        yield
        await runner.cleanup()

    app.cleanup_ctx.append(own_bind)


async def metrics(request: web.Request) -> web.Response:
    return await metrics_response(request.app)


async def metrics_response(app: web.Application) -> web.Response:
    try:
        async with app[SESSIONS]() as session:
            await BACKLOG.refresh(session, utcnow())
    except Exception as error:  # the process's own figures still answer
        log.warning("metrics: the database could not be read (%s: %s)", type(error).__name__, error)
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
