"""What the console's middlewares leave on each request for the pages."""

from __future__ import annotations

from aiohttp import web

from bot.shared.access import Viewer

VIEWER = web.RequestKey("viewer", Viewer)  # who is signed in
LANGUAGE = web.RequestKey("language", str)  # "zh" or "en"
CSRF = web.RequestKey("csrf", str)  # the token every form posts back


def operators_only(request: web.Request) -> Viewer:
    """The viewer, who must be an operator (403 otherwise)."""
    viewer = request[VIEWER]
    if not viewer.is_operator:
        raise web.HTTPForbidden(text="operators only / 仅运营可见")
    return viewer


# Logins allowed to export whole phone numbers (`console.users[].export_phones`).
PHONE_EXPORTERS = web.AppKey("console_phone_exporters", frozenset)
