"""Behind a reverse proxy, the client's own address: taken from X-Forwarded-For only when
the connection comes from a proxy listed in `[server] trusted_proxies` (anyone else could
write that header), by aiohttp-remotes' filtered reading of it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from ipaddress import ip_address, ip_network

from aiohttp import web
from aiohttp_remotes import XForwardedFiltered

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_trusted_proxies(app: web.Application, proxies: Sequence[str]) -> None:
    if not proxies:
        return
    networks = [ip_network(proxy, strict=False) for proxy in proxies]
    forwarded = XForwardedFiltered(set(networks))

    @web.middleware
    async def client_address(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer and any(ip_address(peer[0]) in network for network in networks):
            return await forwarded.middleware(request, handler)
        return await handler(request)

    app.middlewares.append(client_address)
