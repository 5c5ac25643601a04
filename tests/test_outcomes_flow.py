"""Outcomes through the running server: a persona reply delivered in the sandbox is a
touch, her order after it a conversion credited to it, and GET /api/outcomes (behind
the API token) reports it — as 数据不足, since one member proves nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp
from pydantic import SecretStr
from sqlalchemy import select

from bot.settings.model import Settings
from bot.web.app import build_app
from storage.engine import SessionFactory
from storage.outcome_models import OutcomeTouch
from tests.conftest import eventually, start_server

API_TOKEN = "s3cret-token-for-the-api-0123"


async def test_a_delivered_reply_is_a_touch_and_the_order_after_it_a_conversion(
    settings: Settings, sessions: SessionFactory, http: aiohttp.ClientSession
) -> None:
    with_token = settings.model_copy(update={"server": settings.server.model_copy(update={"api_token": SecretStr(API_TOKEN)})})
    server = await start_server(build_app(with_token), http)
    try:
        await server.post_message("王芳", "想给孩子买点全麦吐司")

        async def touched() -> bool:
            async with sessions() as session:
                return (await session.execute(select(OutcomeTouch))).scalars().first() is not None

        await eventually(touched)
        async with sessions() as session:
            touch = (await session.execute(select(OutcomeTouch))).scalars().one()
        assert (touch.source_kind, touch.held_out) == ("auto_reply", False) and touch.ref.startswith("outbox:")
        async with http.post(f"{server.base}/sandbox/orders",
                             json={"member": "王芳", "order_no": "A-1", "amount": 58}) as response:
            assert response.status == 202

        today = datetime.now(settings.zone).date().isoformat()
        url, bearer = f"{server.base}/api/outcomes", {"Authorization": f"Bearer {API_TOKEN}"}

        async def get(params: dict[str, str], headers: dict[str, str]) -> tuple[int, Any]:
            async with http.get(url, params=params, headers=headers) as response:
                return response.status, await response.json()

        assert (await get({}, {}))[0] == 401
        assert (await get({"by": "weather"}, bearer))[0] == 400
        assert (await get({"from": "yesterday"}, bearer))[0] == 400
        assert (await get({"from": "2026-11-02", "to": "2026-11-01"}, bearer))[0] == 400

        async def converted() -> bool:
            status, body = await get({"by": "source", "from": today, "to": today}, bearer)
            return status == 200 and bool(body["rows"]) and body["rows"][0]["credited_orders"] == 1

        await eventually(converted)
        _, body = await get({"by": "source", "from": today, "to": today}, bearer)
        [row] = body["rows"]
        assert row["key"] == "auto_reply:" and row["label"].startswith("自动回复")
        assert row["reached"]["members"] == 1 and row["reached"]["converted"] == 1
        assert row["credited_yuan"] == 58.0 and row["held_out"]["members"] == 0
        assert row["enough"] is False and row["note"].startswith("数据不足") and row["rate_interval"] is None
    finally:
        await server.stop()
