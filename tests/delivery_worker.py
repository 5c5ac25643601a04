"""A delivery process for tests: `python -m tests.delivery_worker DB_URL CLOUD_URL LEASE`
sends the outbox through WeCom (the fake cloud at CLOUD_URL) until it is killed, and
prints "claimed N" each time it claims rows."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

import aiohttp
from tenacity import wait_none

from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.sender import WeComSender
from scheduler.delivery import DeliveryLoop
from storage.engine import create_database_engine, session_factory
from storage.inbox import InboxWriter
from tests.wecom_harness import AGENT, CORP, SECRET


async def main(db_url: str, cloud_url: str, lease: float) -> None:
    engine = create_database_engine(db_url)
    sessions = session_factory(engine)
    async with aiohttp.ClientSession() as http:
        client = WeComClient(http, cloud_url, CORP, SECRET, retry_wait=wait_none(), timeout=aiohttp.ClientTimeout(total=60))
        sender = WeComSender(client, sessions, AGENT, lambda: InboxWriter(engine))
        loop = DeliveryLoop(sessions, {"wecom": sender}, lease=timedelta(seconds=lease), owner="worker-to-kill")
        loop.start()
        print("started", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
