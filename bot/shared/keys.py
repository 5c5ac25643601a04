"""Typed keys for what the application holds (aiohttp's AppKey)."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings.model import Settings
from content_templates.renderer import Renderer
from handlers.config import HandlerConfig
from handlers.dispatcher import Dispatcher
from scheduler.cron import Scheduler
from scheduler.delivery import DeliveryLoop
from storage.engine import SessionFactory
from storage.inbox import InboxWriter
from storage.loops import Loops

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", SessionFactory)
INBOX = web.AppKey("inbox", InboxWriter)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
DELIVERY = web.AppKey("delivery", DeliveryLoop)
HTTP = web.AppKey("http", aiohttp.ClientSession)  # the one outgoing HTTP session
HANDLERS = web.AppKey("handler_config", HandlerConfig)  # the settings as the handlers read them, built once
LOOPS = web.AppKey("loops", Loops)  # the supervised loops and their last ticks, read by /healthz
SCHEDULER = web.AppKey("scheduler", Scheduler)
RENDERER = web.AppKey("renderer", Renderer)  # operator and shipped templates, compiled once for the app
