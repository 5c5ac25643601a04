"""The application factory: assembles storage, handlers, delivery and the platforms."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from sqlalchemy import text

from bot.config import Settings
import aiohttp

from bot.keys import DELIVERY, DISPATCHER, ENGINE, HTTP, INBOX, SANDBOX_HUB, SESSIONS, SETTINGS
from bot.platforms.sandbox import routes as sandbox_routes
from bot.platforms.sandbox.hub import SandboxHub
from bot.platforms.sandbox.sender import SandboxSender
from bot.platforms.wecom.wiring import install_official_account, install_wecom
from content_templates.renderer import Renderer
from handlers.chain import MEMBER_CHAIN, PLATFORM_CHAIN
from handlers.config import Channel, HandlerConfig, KeywordRule, Persona
from handlers.dispatcher import Dispatcher
from scheduler.cron import CronJob, Scheduler
from scheduler.delivery import DeliveryLoop, Sender
from storage.engine import create_database_engine, session_factory
from storage.inbox import InboxWriter


def handler_config(settings: Settings) -> HandlerConfig:
    p = settings.persona
    return HandlerConfig(
        persona=Persona(
            name=p.name,
            title=p.title,
            signature=p.signature,
            default_line=p.default_line,
            tips=dict(p.tips),
            reply_template=p.reply_template,
        ),
        keyword_rules=tuple(
            KeywordRule(id=r.id, tag=r.tag, keywords=tuple(r.keywords), match=r.match, group=r.group)
            for r in settings.tags.rules
        ),
        channels={
            state: Channel(state, tuple(c.tags), c.store, c.owner)
            for state, c in (settings.platforms.wecom.channels.items() if settings.platforms.wecom else ())
        },
        zone=settings.zone,
    )


def renderer_for(settings: Settings) -> Renderer:
    return Renderer([Path(settings.templates.dir)] if settings.templates.dir else [])


def build_app(settings: Settings) -> web.Application:
    """The whole server for `settings`. The database must already be migrated."""
    app = web.Application(client_max_size=settings.server.max_body_bytes)
    app[SETTINGS] = settings
    senders: dict[str, Sender] = {}
    jobs: list[CronJob] = []
    if settings.platforms.sandbox.enabled:
        hub = SandboxHub()
        app[SANDBOX_HUB] = hub
        senders["sandbox"] = SandboxSender(hub)
        sandbox_routes.add_routes(app)

    async def database(app: web.Application) -> AsyncIterator[None]:
        engine = create_database_engine(settings.storage.url)
        app[ENGINE] = engine
        app[SESSIONS] = session_factory(engine)
        yield
        await engine.dispose()

    async def http(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            app[HTTP] = session
            yield

    async def delivery(app: web.Application) -> AsyncIterator[None]:
        loop = DeliveryLoop(app[SESSIONS], senders)
        app[DELIVERY] = loop
        loop.start()
        yield
        await loop.close()

    async def dispatcher(app: web.Application) -> AsyncIterator[None]:
        worker = Dispatcher(
            app[SESSIONS],
            MEMBER_CHAIN,
            PLATFORM_CHAIN,
            handler_config(settings),
            renderer_for(settings),
            on_outbox=app[DELIVERY].wake,
        )
        app[DISPATCHER] = worker
        worker.start()
        yield
        await worker.close()

    async def inbox(app: web.Application) -> AsyncIterator[None]:
        # Its own connection: acknowledgements never queue behind the dispatcher's work.
        engine = create_database_engine(settings.storage.url)
        writer = InboxWriter(engine, on_commit=app[DISPATCHER].wake)
        app[INBOX] = writer
        writer.start()
        yield
        await writer.close()  # runs after in-flight requests finished: nothing acked is lost
        await engine.dispose()

    # Set up in this order, torn down in reverse: requests stop, the inbox drains, the
    # dispatcher finishes its batch, delivery finishes its sends, then the platform
    # clients, the HTTP session and the engine close.
    app.cleanup_ctx.extend([database, http])
    if settings.platforms.wecom is not None:
        install_wecom(app, settings.platforms.wecom, senders, jobs)
    if settings.platforms.oa is not None:
        install_official_account(app, settings.platforms.oa, senders)
    async def scheduler(app: web.Application) -> AsyncIterator[None]:
        if not jobs:
            yield
            return
        cron = Scheduler(jobs, settings.zone)
        cron.start()
        yield
        cron.close()

    app.cleanup_ctx.extend([delivery, dispatcher, inbox, scheduler])
    app.router.add_get("/healthz", healthz)
    return app


async def healthz(request: web.Request) -> web.Response:
    try:
        async with request.app[SESSIONS]() as session:
            await session.execute(text("SELECT 1"))
    except Exception as error:
        return web.json_response({"status": "down", "error": type(error).__name__}, status=503)
    return web.json_response({"status": "ok"})
