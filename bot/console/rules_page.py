"""Placeholder until the page lands."""

from aiohttp import web


def add_routes(console: web.Application) -> None:
    pass
