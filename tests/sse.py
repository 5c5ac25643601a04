"""Reading a server-sent event stream the way a browser's EventSource does."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp


async def next_event(response: aiohttp.ClientResponse, timeout: float = 10.0) -> dict[str, Any]:
    data: list[str] = []
    async with asyncio.timeout(timeout):
        while True:
            line = (await response.content.readline()).decode()
            if not line:
                raise EOFError("the event stream ended")
            line = line.rstrip("\r\n")
            if line.startswith("data:"):
                data.append(line[5:].lstrip())
            elif not line and data:
                return json.loads("\n".join(data))
