"""The application factory: assembles storage, handlers, delivery and the platforms."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.console.site import add_console, console_secret
from bot.platforms.sandbox import routes as sandbox_routes
from bot.platforms.sandbox.hub import SANDBOX_HUB, SandboxHub
from bot.platforms.sandbox.sender import SandboxSender
from bot.platforms.wecom.wiring import (
    add_official_account_client,
    add_official_account_routes,
    add_wecom_client,
    add_wecom_routes,
    add_wecom_sidebar,
)
from bot.settings.calendar import calendar_options
from bot.settings.care_plan import care_plan
from bot.settings.delivery import delivery_policy
from bot.settings.handlers import handler_config
from bot.settings.model import Settings
from bot.settings.templates import renderer_for
from bot.shared.keys import DELIVERY, DISPATCHER, ENGINE, HANDLERS, HTTP, INBOX, RENDERER, SESSIONS, SETTINGS
from bot.shared.outcomes_digest import daily_ltv_fit, send_outcomes_digest
from bot.shared.prompt_links import LINKS, prompt_link_builder
from bot.web.api import add_api_routes
from bot.web.metrics import add_metrics
from bot.web.proxies import add_trusted_proxies
from handlers.chain import MEMBER_CHAIN, PLATFORM_CHAIN
from handlers.dispatcher import Dispatcher
from scheduler.calendar_run import run_calendar
from scheduler.care import run_care_scan
from scheduler.cron import CronJob, Scheduler
from scheduler.delivery import DeliveryLoop, Sender
from scheduler.engagement import snapshot_recent
from scheduler.layer_jobs import recompute_layers
from scheduler.staff_digest import send_digests
from scheduler.tag_sweep import sweep_tags
from storage.engine import checkpoint_wal, create_database_engine, is_sqlite, session_factory
from storage.backlog import BACKLOG
from storage.inbox import InboxWriter
from storage.models import utcnow

log = logging.getLogger(__name__)


def build_app(settings: Settings) -> web.Application:
    """The server for `settings`. The database must already be migrated.

    `server.role` splits the work: "webhook" only receives (verify, store, acknowledge),
    "worker" only handles and delivers, "all" does both in one process.
    """
    app = web.Application(client_max_size=settings.server.max_body_bytes)
    app[SETTINGS] = settings
    add_trusted_proxies(app, settings.server.trusted_proxies)
    receives = settings.server.role in ("all", "webhook")
    works = settings.server.role in ("all", "worker")
    platforms = settings.platforms
    senders: dict[str, Sender] = {}
    config = handler_config(settings)
    renderer = renderer_for(settings)
    app[HANDLERS], app[RENDERER] = config, renderer
    schemes = [s.scheme() for s in settings.layers.schemes]
    care = care_plan(settings)
    jobs: list[CronJob] = [
        CronJob("tag-sweep", settings.tags.sweep_cron, lambda: sweep_tags(app[SESSIONS], config, utcnow())),
        CronJob("layer-recompute", settings.layers.recompute_cron, lambda: recompute_layers(
            app[SESSIONS], schemes, settings.layers.rfm.spec(), renderer, settings.zone, utcnow()
        )),
        CronJob("care-scan", settings.care.scan_cron, lambda: run_care_scan(
            app[SESSIONS], care, renderer, settings.zone, utcnow()
        )),
        CronJob("content-calendar", "* * * * *", lambda: run_calendar(
            app[SESSIONS], calendar_options(settings.calendar, config.persona.template_variables(),
                                             global_control=settings.outcomes.global_control,
                                             outcome_scheme=settings.outcomes.scheme), renderer,
            settings.zone, utcnow(),
        )),
        CronJob("staff-digest", settings.tasks.digest_cron, lambda: send_digests(
            app[SESSIONS], renderer, settings.zone, utcnow(), config.staff_platform_for("wecom"),
            days_ahead=settings.tasks.digest_days_ahead, escalate_after_days=settings.tasks.escalate_after_days,
        )),
        CronJob("outcomes-digest", settings.outcomes.digest_cron, lambda: send_outcomes_digest(
            app[SESSIONS], settings, config.staff_platform_for("wecom"), utcnow()
        )),
        CronJob("ltv-fit", settings.outcomes.ltv_cron, lambda: daily_ltv_fit(app[SESSIONS], settings, utcnow())),
        CronJob("engagement-snapshot", settings.layers.engagement_cron, lambda: snapshot_recent(
            app[SESSIONS], [s.name for s in schemes], settings.zone, utcnow()
        )),
    ]
    if settings.server.api_token is not None:
        add_api_routes(app, settings.server.api_token.get_secret_value())
    secret = console_secret(settings)
    if settings.console.users:
        add_console(app, settings, secret)
    links = prompt_link_builder(settings, secret)  # task links in staff prompts (none without the console)
    app[LINKS] = links
    if platforms.sandbox.enabled:
        hub = SandboxHub()
        app[SANDBOX_HUB] = hub
        senders["sandbox"] = SandboxSender(hub, links)
        if receives:
            sandbox_routes.add_routes(app)
    if receives and platforms.wecom is not None:
        add_wecom_routes(app, platforms.wecom)
    if receives and platforms.oa is not None:
        add_official_account_routes(app, platforms.oa)

    async def database(app: web.Application) -> AsyncIterator[None]:
        engine = create_database_engine(settings.storage.url)
        app[ENGINE] = engine
        app[SESSIONS] = session_factory(engine)
        BACKLOG.watch_pool("main", engine)
        yield
        await engine.dispose()

    async def http(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            app[HTTP] = session
            yield

    async def delivery(app: web.Application) -> AsyncIterator[None]:
        loop = DeliveryLoop(app[SESSIONS], senders, policy=delivery_policy(settings),
                            outcome_scheme=settings.outcomes.scheme)
        app[DELIVERY] = loop
        loop.start()
        yield
        await loop.close()

    async def dispatcher(app: web.Application) -> AsyncIterator[None]:
        worker = Dispatcher(
            app[SESSIONS],
            MEMBER_CHAIN,
            PLATFORM_CHAIN,
            config,
            renderer,
            on_outbox=app[DELIVERY].wake,
            # Without a webhook in this process nothing wakes the dispatcher: look often.
            poll_interval=timedelta(seconds=5 if receives else 0.25),
        )
        app[DISPATCHER] = worker
        worker.start()
        yield
        await worker.close()

    async def inbox(app: web.Application) -> AsyncIterator[None]:
        # Its own connection, which never checkpoints: acknowledgements neither queue
        # behind the dispatcher's work nor wait while the WAL is copied back.
        engine = create_database_engine(settings.storage.url, checkpoints=False)
        BACKLOG.watch_pool("inbox", engine)
        writer = InboxWriter(engine, on_commit=app[DISPATCHER].wake if DISPATCHER in app else lambda: None)
        app[INBOX] = writer
        writer.start()
        yield
        await writer.close()  # runs after in-flight requests finished: nothing acked is lost
        await engine.dispose()

    async def wal_checkpoints(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_checkpoint_every_second(app[ENGINE]), name="wal-checkpoints")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def scheduler(app: web.Application) -> AsyncIterator[None]:
        cron = Scheduler(jobs, settings.zone, store_url=settings.storage.url,
                         catch_up_seconds=settings.scheduler.catch_up_minutes * 60)
        cron.start()
        yield
        cron.close()

    # Set up in this order, torn down in reverse: requests stop, the inbox drains, the
    # dispatcher finishes its batch, delivery finishes its sends, then the platform
    # clients, the HTTP session and the engine close.
    app.cleanup_ctx.extend([database, http])
    if works:
        if platforms.wecom is not None:
            add_wecom_client(app, platforms.wecom, senders, jobs, links)
        if platforms.oa is not None:
            add_official_account_client(app, platforms.oa, senders)
        app.cleanup_ctx.extend([delivery, dispatcher])
    app.cleanup_ctx.append(inbox)  # workers write too: pulled Customer Service messages
    if is_sqlite(settings.storage.url):
        app.cleanup_ctx.append(wal_checkpoints)
    if works:
        app.cleanup_ctx.append(scheduler)
    if receives and platforms.wecom is not None and platforms.wecom.sidebar.enabled:
        add_wecom_sidebar(app, settings)  # after the clients: it shares the worker's
    app.router.add_get("/healthz", healthz)
    add_metrics(app, settings.metrics)
    return app


async def _checkpoint_every_second(engine: AsyncEngine) -> None:
    while True:
        await asyncio.sleep(1)
        try:
            await checkpoint_wal(engine)
        except Exception:  # a busy database now is fine next second
            log.warning("WAL checkpoint failed", exc_info=True)


async def healthz(request: web.Request) -> web.Response:
    try:
        async with request.app[SESSIONS]() as session:
            await session.execute(text("SELECT 1"))
    except Exception as error:
        return web.json_response({"status": "down", "error": type(error).__name__}, status=503)
    return web.json_response({"status": "ok"})
