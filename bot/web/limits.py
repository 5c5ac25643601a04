"""How long a client may take to send a request, on every route.

aiohttp by itself never times out a request whose headers or body trickle in: 500
half-sent POSTs were still held after 85 s, and 1,100 exhausted the process's file
descriptors. Two bounds close that:

- headers: aiohttp's keep-alive timer starts when a connection opens and closes it if no
  complete request has arrived by then, so `header_timeout_seconds` is passed to it as
  `keepalive_timeout` (an idle keep-alive connection is closed after as long);
- body: `body_deadline` gives a request whose body has not fully arrived when its
  handler starts `body_timeout_seconds` to finish it; then the client gets 408 and the
  connection is closed, whatever the handler was doing with the body.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bot.settings.model import ServerSettings

_TIMEOUT_ANSWER = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def runner_options(server: ServerSettings) -> dict[str, Any]:
    """What `web.run_app` or `web.AppRunner` needs for the header bound."""
    return {"keepalive_timeout": server.header_timeout_seconds}


def body_deadline(seconds: float) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        content = request.content
        if content.is_eof():  # no body, or all of it arrived with the headers
            return await handler(request)
        expired = False

        def expire() -> None:
            nonlocal expired
            transport = request.transport
            if content.is_eof() or transport is None or transport.is_closing():
                return
            expired = True
            transport.write(_TIMEOUT_ANSWER)
            transport.close()  # the handler's read now fails; its answer goes nowhere

        timer = asyncio.get_running_loop().call_later(seconds, expire)
        try:
            return await handler(request)
        except Exception:
            if expired:  # answered already: end the handler quietly, no traceback in the log
                raise web.HTTPRequestTimeout() from None
            raise
        finally:
            timer.cancel()

    return middleware
