"""The application factory: assembles storage, handlers, delivery and the platforms."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
from aiohttp import web
from sqlalchemy.exc import IntegrityError
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
from bot.settings.model import Settings
from bot.settings.documents import documents_of
from bot.shared.config_store import apply_load, plan_load
from bot.shared.live_config import LIVE, LiveConfig
from bot.shared.keys import (
    DELIVERY, DISPATCHER, ENGINE, HANDLERS, HTTP, INBOX, LOOPS, RENDERER, SCHEDULER, SESSIONS, SETTINGS,
)
from bot.shared.outcomes_digest import daily_ltv_fit, send_outcomes_digest
from bot.shared.prompt_links import LINKS, plain_link_builder, prompt_link_builder
from bot.web.api import add_api_routes
from bot.web.limits import body_deadline
from bot.web.metrics import add_metrics
from bot.web.proxies import add_trusted_proxies
from handlers.chain import MEMBER_CHAIN, PLATFORM_CHAIN
from handlers.dispatcher import Dispatcher
from handlers.give_way import AckRate, GiveWay
from scheduler.calendar_run import run_calendar
from scheduler.care import run_care_scan
from scheduler.cron import CronJob, Scheduler
from scheduler.delivery import DeliveryLoop, Sender
from scheduler.engagement import snapshot_recent
from scheduler.layer_jobs import recompute_layers
from scheduler.staff_digest import send_digests
from scheduler.tag_sweep import sweep_tags
from storage.engine import SessionFactory, checkpoint_wal, create_database_engine, is_sqlite, session_factory
from storage.backlog import BACKLOG
from storage.inbox import InboxWriter
from storage.loops import Loops
from storage.models import utcnow
from storage.scheduling import AdvisoryLock, LeaseLock, Leadership, database_takes_writes, process_name

log = logging.getLogger(__name__)


def build_app(settings: Settings) -> web.Application:
    """The server for `settings`. The database must already be migrated.

    `server.role` splits the work: "webhook" only receives (verify, store, acknowledge),
    "worker" only handles and delivers, "all" does both in one process.
    """
    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        middlewares=[body_deadline(settings.server.body_timeout_seconds)],
    )
    app[SETTINGS] = settings
    app[LOOPS] = Loops(stall_after=settings.server.loop_stall_seconds)
    add_trusted_proxies(app, settings.server.trusted_proxies)
    receives = settings.server.role in ("all", "webhook")
    works = settings.server.role in ("all", "worker")
    platforms = settings.platforms
    senders: dict[str, Sender] = {}
    # What operators edit in the console is read from the database at start and whenever
    # it changes; the jobs below read `live` at each run, so they use the newest, and
    # their cron lines are handed to the scheduler on each change (`job_cron_lines`).
    live = LiveConfig(settings)
    app[LIVE] = live
    app[HANDLERS], app[RENDERER] = live.handlers, live.renderer
    crons = job_cron_lines(settings)
    jobs: list[CronJob] = [
        CronJob("tag-sweep", crons["tag-sweep"], lambda: sweep_tags(app[SESSIONS], live.handlers, utcnow())),
        CronJob("layer-recompute", crons["layer-recompute"], lambda: recompute_layers(
            app[SESSIONS], [s.scheme() for s in live.settings.layers.schemes], live.settings.layers.rfm.spec(),
            live.renderer, settings.zone, utcnow()
        )),
        CronJob("care-scan", crons["care-scan"], lambda: run_care_scan(
            app[SESSIONS], care_plan(live.settings), live.renderer, settings.zone, utcnow()
        )),
        CronJob("content-calendar", "* * * * *", lambda: run_calendar(
            app[SESSIONS], calendar_options(live.settings.calendar, live.handlers.persona.template_variables(),
                                             global_control=live.settings.outcomes.global_control,
                                             outcome_scheme=live.settings.outcomes.scheme),
            live.renderer, settings.zone, utcnow(),
        )),
        CronJob("staff-digest", crons["staff-digest"], lambda: send_digests(
            app[SESSIONS], live.renderer, settings.zone, utcnow(), live.handlers.staff_platform_for("wecom"),
            days_ahead=live.settings.tasks.digest_days_ahead,
            escalate_after_days=live.settings.tasks.escalate_after_days,
        )),
        CronJob("outcomes-digest", crons["outcomes-digest"], lambda: send_outcomes_digest(
            app[SESSIONS], live.settings, live.handlers.staff_platform_for("wecom"), utcnow()
        )),
        CronJob("ltv-fit", crons["ltv-fit"], lambda: daily_ltv_fit(app[SESSIONS], live.settings, utcnow())),
        CronJob("engagement-snapshot", crons["engagement-snapshot"], lambda: snapshot_recent(
            app[SESSIONS], [s.name for s in live.settings.layers.schemes], settings.zone, utcnow()
        )),
    ]
    if settings.server.api_token is not None:
        add_api_routes(app, settings.server.api_token.get_secret_value())
    secret = console_secret(settings)
    if settings.console.users:
        add_console(app, settings, secret)
    links = prompt_link_builder(settings, secret)  # task links in staff prompts (none without the console)
    # The sandbox's staff panel needs no login, so its prompts carry plain console
    # addresses, never a signed link (a signed link opens her tasks to whoever reads it).
    app[LINKS] = plain_link_builder(settings)
    if platforms.sandbox.enabled:
        hub = SandboxHub()
        app[SANDBOX_HUB] = hub
        senders["sandbox"] = SandboxSender(hub, app[LINKS])
        if receives:
            sandbox_routes.add_routes(app)
    if receives and platforms.wecom is not None:
        add_wecom_routes(app, platforms.wecom)
    if receives and platforms.oa is not None:
        add_official_account_routes(app, platforms.oa)

    async def database(app: web.Application) -> AsyncIterator[None]:
        storage = settings.storage
        engine = create_database_engine(storage.url, pool_size=storage.pool_size, max_overflow=storage.max_overflow)
        app[ENGINE] = engine
        app[SESSIONS] = session_factory(engine)
        BACKLOG.watch_pool("main", engine)
        await _bootstrap_configuration(app[SESSIONS], settings)
        await live.refresh(app[SESSIONS])
        watcher = app[LOOPS].run(
            "config-watch", lambda: live.watch(app[SESSIONS], tick=lambda: app[LOOPS].tick("config-watch"))
        )
        yield
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await engine.dispose()

    async def http(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            app[HTTP] = session
            yield

    acks = AckRate()  # this process's acknowledgements, which its handling gives way to

    async def delivery(app: web.Application) -> AsyncIterator[None]:
        d = settings.delivery
        loop = DeliveryLoop(
            app[SESSIONS], senders, policy=live.delivery, concurrency=d.route_concurrency,
            welcome_concurrency=d.welcome_concurrency, lease=timedelta(seconds=d.claim_seconds), loops=app[LOOPS],
            outcome_scheme=settings.outcomes.scheme,
        )
        app[DELIVERY] = loop
        live.on_change(lambda now: loop.reconfigure(now.delivery))
        loop.start()
        yield
        await loop.close()

    async def dispatcher(app: web.Application) -> AsyncIterator[None]:
        worker = Dispatcher(
            app[SESSIONS],
            MEMBER_CHAIN,
            PLATFORM_CHAIN,
            live.handlers,
            live.renderer,
            on_outbox=app[DELIVERY].wake,
            on_welcomes=app[DELIVERY].expect_welcomes,
            welcomes_first=app[DELIVERY].welcomes_settled,
            # Without a webhook in this process nothing wakes the dispatcher: look often.
            poll_interval=timedelta(seconds=5 if receives else 0.25),
            lease=timedelta(seconds=settings.storage.inbox_lease_seconds),
            loops=app[LOOPS],
            give_way=GiveWay(acks.per_second) if receives else None,  # a worker answers no callbacks
        )
        app[DISPATCHER] = worker
        live.on_change(lambda now: worker.reconfigure(now.handlers, now.renderer))
        worker.start()
        yield
        await worker.close()

    async def inbox(app: web.Application) -> AsyncIterator[None]:
        # Its own connection, which never checkpoints: acknowledgements neither queue
        # behind the dispatcher's work nor wait while the WAL is copied back.
        # One writer task, one transaction at a time: one connection.
        engine = create_database_engine(settings.storage.url, checkpoints=False, pool_size=1, max_overflow=0)
        if not is_sqlite(settings.storage.url):  # on SQLite the writer's connection is outside the pool
            BACKLOG.watch_pool("inbox", engine)
        if DISPATCHER in app:
            writer = InboxWriter(engine, on_commit=app[DISPATCHER].wake, on_urgent=app[DISPATCHER].wake_urgent,
                                 on_stored=acks.note)
        else:
            writer = InboxWriter(engine)
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
        options = settings.scheduler
        leadership: Leadership
        if is_sqlite(settings.storage.url):
            leadership = LeaseLock(app[SESSIONS], timedelta(seconds=options.lease_seconds))
        else:
            leadership = AdvisoryLock(settings.storage.url)
        cron = Scheduler(jobs, settings.zone, app[SESSIONS], leadership, loops=app[LOOPS],
                         catch_up_seconds=options.catch_up_minutes * 60, check_seconds=options.check_seconds)
        # The lines in force now (the console's edits included), then every change.
        cron.reschedule(job_cron_lines(live.settings))
        live.on_change(lambda now: cron.reschedule(job_cron_lines(now.settings)))
        app[SCHEDULER] = cron
        cron.start()
        yield
        await cron.close()

    # Set up in this order, torn down in reverse: requests stop, the inbox drains, the
    # dispatcher finishes its batch, delivery finishes its sends, then the platform
    # clients, the HTTP session and the engine close.
    app.cleanup_ctx.extend([database, http])
    if works:
        if platforms.wecom is not None:
            add_wecom_client(app, platforms.wecom, senders, jobs, links, settings.outcomes.scheme)
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


async def freeze_startup_objects(_app: web.Application) -> None:
    """What the process made to start (modules, tables, settings: some 150,000 objects)
    lives as long as it does: moved out of the garbage collector's sight, so that a full
    collection no longer walks it, which stopped every request for 50-150 ms. For the
    process that serves (`siyu serve`), not for an app made and dropped, as in tests:
    what is frozen is never collected."""
    gc.collect()
    gc.freeze()


def job_cron_lines(settings: Settings) -> dict[str, str]:
    """Each fixed job's cron line in `settings` (the content calendar runs every minute
    and reads its entries' own lines from the database at each run)."""
    lines = {
        "tag-sweep": settings.tags.sweep_cron,
        "layer-recompute": settings.layers.recompute_cron,
        "care-scan": settings.care.scan_cron,
        "staff-digest": settings.tasks.digest_cron,
        "outcomes-digest": settings.outcomes.digest_cron,
        "ltv-fit": settings.outcomes.ltv_cron,
        "engagement-snapshot": settings.layers.engagement_cron,
    }
    if (wecom := settings.platforms.wecom) is not None:
        lines |= {"wecom-reconcile": wecom.reconcile_cron, "wecom-moments-read": wecom.moments_read_cron}
    return lines


async def _bootstrap_configuration(sessions: SessionFactory, settings: Settings) -> None:
    """The file's documents into the database where the console has not changed them."""
    plan = await plan_load(sessions, documents_of(settings), at_start=True)
    try:
        await apply_load(sessions, plan, "配置文件", overwrite=False)
    except IntegrityError:  # another process of this deployment loaded the same file just now
        return
    if plan.conflicts:
        log.warning("the configuration file differs from edits made in the console for %s; the console's "
                    "versions are kept (run `siyu config load FILE --yes` to replace them)", ", ".join(plan.conflicts))


async def _checkpoint_every_second(engine: AsyncEngine) -> None:
    while True:
        await asyncio.sleep(1)
        try:
            await checkpoint_wal(engine)
        except Exception:  # a busy database now is fine next second
            log.warning("WAL checkpoint failed", exc_info=True)


# A probe that waits longer than this for its write reports the database as refusing.
HEALTH_WRITE_SECONDS = 5.0


async def healthz(request: web.Request) -> web.Response:
    """200 with each loop's last tick; 503 with the reasons when a loop is dead or
    stalled, or the database does not take a small write."""
    loops = request.app[LOOPS]
    problems = loops.problems()
    try:
        async with asyncio.timeout(HEALTH_WRITE_SECONDS), request.app[SESSIONS]() as session:
            await database_takes_writes(session, _HOLDER)
    except TimeoutError:
        problems.append(f"the database did not take a write within {HEALTH_WRITE_SECONDS:.0f} s")
    except Exception as error:
        first_line = (str(error).splitlines() or [""])[0][:200]
        problems.append(f"the database refuses writes: {type(error).__name__}: {first_line}")
    body = {"status": "down" if problems else "ok", "problems": problems, "loops": loops.snapshot()}
    return web.json_response(body, status=503 if problems else 200)


_HOLDER = process_name()
