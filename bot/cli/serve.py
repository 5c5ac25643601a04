"""Running the server: migrations first, then aiohttp until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from aiohttp import web

from bot.settings.model import Settings
from bot.web.app import build_app, freeze_startup_objects
from bot.web.limits import runner_options
from storage.migrate import upgrade


def run_server(settings: Settings, port: int | None = None, announce: Callable[[str], None] | None = None) -> int:
    """Serve until asked to stop; a SIGTERM finishes in-flight work and returns 0."""
    upgrade(settings.storage.url)
    host, port = settings.server.host, port or settings.server.port
    base = f"http://{host}:{port}"

    def announce_urls(_: str) -> None:
        (announce or _default_announce)(base)

    app = build_app(settings)
    app.on_startup.append(freeze_startup_objects)  # after the cleanup contexts' setup: all is made
    try:
        web.run_app(
            app,
            host=host,
            port=port,
            access_log=logging.getLogger("aiohttp.access") if settings.server.access_log else None,
            shutdown_timeout=settings.server.shutdown_timeout,
            print=announce_urls,
            **runner_options(settings.server),
        )
    except OSError as error:
        print(f"siyu: cannot listen on {host}:{port}: {error.strerror or error}", file=sys.stderr)
        print("siyu: stop what is using it, or pick another port ([server] port; `siyu demo --port N`)", file=sys.stderr)
        return 1
    return 0


def _default_announce(base: str) -> None:
    print(f"siyu is serving on {base}  (health: {base}/healthz; Ctrl-C stops)", flush=True)
