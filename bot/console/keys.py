"""What the console's middlewares leave on each request for the pages."""

from __future__ import annotations

from aiohttp import web

from bot.console.access import Viewer

VIEWER = web.RequestKey("viewer", Viewer)  # who is signed in
LANGUAGE = web.RequestKey("language", str)  # "zh" or "en"
CSRF = web.RequestKey("csrf", str)  # the token every form posts back
