"""Plugging WeCom and the official account into the application."""

from __future__ import annotations

import logging
from datetime import timedelta
from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy.exc import IntegrityError
from tenacity import wait_random_exponential

from bot.platforms.oa.routes import OfficialAccountCallback
from bot.platforms.oa.sender import OfficialAccountSender
from bot.platforms.wecom.client import OfficialAccountClient, WeComClient
from bot.platforms.wecom.crypto import CallbackCrypto
from bot.platforms.wecom.keys import OA_CLIENT, WECOM_CLIENT
from bot.platforms.wecom.ratelimit import APP_MESSAGE_LIMITS
from bot.platforms.wecom.reconcile import reconcile_contacts
from bot.platforms.wecom.routes import WeComCallback
from bot.platforms.wecom.send_results import read_mass_send_results
from bot.platforms.wecom.sender import WeComSender
from bot.platforms.wecom.sidebar.routes import add_sidebar_routes
from bot.platforms.wecom.sidebar.session import key_for
from bot.platforms.wecom.tickets import Tickets
from bot.settings.model import OfficialAccountSettings, Settings, WeComSettings
from bot.shared.keys import HTTP, INBOX, SESSIONS
from bot.shared.prompt_links import LinkBuilder, no_links
from scheduler.cron import CronJob
from scheduler.delivery import Sender
from scheduler.moment_reads import queue_moment_reads
from storage.engine import SessionFactory
from storage.group_welcomes import WelcomeContent, sync_config_welcomes, sync_join_ways
from storage.models import utcnow
from storage.send_limits import DatabaseSendLimits
from storage.shared_values import DatabaseValues

log = logging.getLogger(__name__)


def add_wecom_routes(app: web.Application, settings: WeComSettings) -> None:
    crypto = CallbackCrypto(
        settings.token.get_secret_value(), settings.encoding_aes_key.get_secret_value(), settings.corp_id
    )
    callback = WeComCallback(crypto, settings.replay_window_seconds)
    app.router.add_get(settings.callback_path, callback.verify_url)
    app.router.add_post(settings.callback_path, callback.receive)


def add_wecom_client(
    app: web.Application, settings: WeComSettings, senders: dict[str, Sender], jobs: list[CronJob],
    links: LinkBuilder = no_links, outcome_scheme: str = "value",
) -> None:
    """The WeCom client and sender; `links` makes staff prompts' console paths into URLs."""
    async def client(app: web.Application) -> AsyncIterator[None]:
        wecom = WeComClient(
            app[HTTP], settings.api_base, settings.corp_id, settings.secret.get_secret_value(),
            retry_wait=_backoff(settings.retry_max_seconds),
            # Counted and kept in the database: every process sees the same sends and token.
            send_limits=DatabaseSendLimits(app[SESSIONS], APP_MESSAGE_LIMITS), values=DatabaseValues(app[SESSIONS]),
        )
        app[WECOM_CLIENT] = wecom
        senders["wecom"] = WeComSender(
            wecom, app[SESSIONS], settings.agent_id, lambda: app[INBOX], tag_sync_group=settings.tag_sync_group,
            links=links, channels=settings.channels, outcome_scheme=outcome_scheme,
        )
        await _configured_group_tools(app[SESSIONS], settings)
        yield

    app.cleanup_ctx.append(client)
    jobs.append(CronJob(
        "wecom-reconcile", settings.reconcile_cron, lambda: reconcile_contacts(app[WECOM_CLIENT], app[SESSIONS])
    ))
    jobs.append(CronJob(
        "wecom-moments-read", settings.moments_read_cron,
        lambda: queue_moment_reads(app[SESSIONS], utcnow(), settings.moments_read_days),
    ))
    jobs.append(CronJob(
        "wecom-mass-results", settings.mass_results_cron,
        lambda: read_mass_send_results(app[WECOM_CLIENT], app[SESSIONS], utcnow(), settings.mass_results_days,
                                       outcome_scheme),
    ))


async def _configured_group_tools(sessions: SessionFactory, settings: WeComSettings) -> None:
    """Group welcome templates and channels' join ways as the file says, queued for
    WeCom when they changed (the console's own templates stay as they are)."""
    welcomes = {w.id: WelcomeContent(w.text, w.image_url, w.link_title, w.link_url, w.link_desc, w.link_picurl, w.notify)
                for w in settings.group_welcomes}
    ways = {code: (c.group_chats, c.group_room_name) for code, c in settings.channels.items() if c.group_chats}
    try:
        async with sessions() as session, session.begin():
            refused = await sync_config_welcomes(session, welcomes, utcnow())
            await sync_join_ways(session, ways, utcnow())
    except IntegrityError:  # another process starting at the same time wrote them first
        log.info("group welcome templates and join ways were synced by another process")
        return
    if refused:
        log.error("group welcome templates not added, WeCom keeps at most 100: %s", ", ".join(refused))


def add_wecom_sidebar(app: web.Application, settings: Settings) -> None:
    """The chat-toolbar page; it uses the worker's WeCom client when this process has one."""
    wecom = settings.platforms.wecom
    assert wecom is not None
    sidebar = add_sidebar_routes(app, settings, key_for(wecom.secret.get_secret_value()))

    async def client(app: web.Application) -> AsyncIterator[None]:
        shared = DatabaseValues(app[SESSIONS])
        found = app.get(WECOM_CLIENT) or WeComClient(
            app[HTTP], wecom.api_base, wecom.corp_id, wecom.secret.get_secret_value(),
            retry_wait=_backoff(wecom.retry_max_seconds), values=shared,
        )
        sidebar.client, sidebar.tickets = found, Tickets(found, wecom.agent_id, shared)
        yield

    app.cleanup_ctx.append(client)


def add_official_account_routes(app: web.Application, settings: OfficialAccountSettings) -> None:
    keys = [k for k in (settings.encoding_aes_key, settings.previous_encoding_aes_key) if k is not None]
    token = settings.token.get_secret_value()
    cryptos = [CallbackCrypto(token, key.get_secret_value(), settings.app_id) for key in keys]
    callback = OfficialAccountCallback(
        token, cryptos, accept_plaintext=settings.accept_plaintext or not cryptos,
        replay_window=timedelta(seconds=settings.replay_window_seconds),
    )
    app.router.add_get(settings.callback_path, callback.verify_url)
    app.router.add_post(settings.callback_path, callback.receive)


def add_official_account_client(
    app: web.Application, settings: OfficialAccountSettings, senders: dict[str, Sender]
) -> None:
    async def client(app: web.Application) -> AsyncIterator[None]:
        oa = OfficialAccountClient(
            app[HTTP], settings.api_base, settings.app_id, settings.secret.get_secret_value(),
            retry_wait=_backoff(settings.retry_max_seconds),
            # A new token ends the old one: every process must use the one fetched last.
            values=DatabaseValues(app[SESSIONS]),
        )
        app[OA_CLIENT] = oa
        senders["oa"] = OfficialAccountSender(oa, app[SESSIONS])
        yield

    app.cleanup_ctx.append(client)


def _backoff(longest: float) -> wait_random_exponential:
    return wait_random_exponential(multiplier=min(0.5, longest), max=longest)
