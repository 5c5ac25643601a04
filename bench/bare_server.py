"""The baseline: a bare aiohttp handler that only answers "success" (no crypto, no storage)."""

import sys

from aiohttp import web


async def success(_request: web.Request) -> web.Response:
    return web.Response(text="success")


app = web.Application()
app.router.add_post("/wecom/callback", success)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=lambda _: print("ready", flush=True))
