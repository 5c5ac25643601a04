"""The project's fake WeCom cloud (tests/fakes) as a process of its own, for a benchmark
whose server must reach a cloud that answers without sharing the bench's own loop.

    .venv/bin/python bench/fake_cloud.py CORP_ID SECRET [STAFF ...]

Prints its base URL on the first line, then serves until terminated.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.wecom_cloud import FakeWeComCloud  # noqa: E402


async def serve(corp_id: str, secret: str, staff: list[str]) -> None:
    cloud = FakeWeComCloud(corp_id, {secret: "siyu"})
    cloud.add_staff(*staff)
    print(await cloud.start(), flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await cloud.close()


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    asyncio.run(serve(sys.argv[1], sys.argv[2], sys.argv[3:]))
