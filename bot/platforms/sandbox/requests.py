"""Reading sandbox requests: JSON bodies, and errors that say what to fix."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bot.shared import strict_json


def json_error(status: type[web.HTTPException], message: str) -> web.HTTPException:
    return status(text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json")


async def json_body(request: web.Request) -> Any:
    """The body, parsed strictly (`bot/shared/strict_json.py`): NaN, Infinity, huge
    numbers, lone surrogates and deep nesting are a 400 that says which."""
    try:
        return strict_json.loads(await request.read())
    except strict_json.BadJson as error:
        raise bad_request(str(error)) from None


def bad_request(message: str) -> web.HTTPException:
    return json_error(web.HTTPBadRequest, message)
