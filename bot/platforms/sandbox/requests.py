"""Reading sandbox requests: JSON bodies, and errors that say what to fix."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def json_error(status: type[web.HTTPException], message: str) -> web.HTTPException:
    return status(text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json")


async def json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except json.JSONDecodeError as error:
        raise bad_request(f"malformed JSON: {error.msg} at position {error.pos}") from None
    except UnicodeDecodeError:
        raise bad_request("the body must be UTF-8 JSON") from None


def bad_request(message: str) -> web.HTTPException:
    return json_error(web.HTTPBadRequest, message)
