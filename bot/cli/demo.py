"""`siyu demo`: seed the demo bakery brand (bot/cli/demo_brand.py) in a folder and serve
it with the sandbox platform."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.cli.demo_brand import DEMO_PASSWORD, prepare_demo, write_config
from bot.cli.loading import load_or_report
from bot.cli.serve import run_server
from storage.engine import keep_private
from storage.migrate import upgrade


def demo(directory: Path, port: int | None) -> int:
    path = write_config(directory, port or 8080)
    settings = load_or_report(path)
    if settings is None:
        return 1
    keep_private(settings.storage.url)  # members' phones and messages: owner only
    upgrade(settings.storage.url)

    result = asyncio.run(prepare_demo(settings))
    what = "seeded" if result.created else "reusing"
    print(f"siyu demo: {what} {result.members} members and {result.orders} orders in {directory}/", flush=True)

    def announce(base: str) -> None:
        print(f"  chat as a member:  {base}/sandbox", flush=True)
        if settings.console.users:
            print(f"  operator console:  {base}/admin/  (log in as ops, or chenjing / liuyang for staff;"
                  f" password {DEMO_PASSWORD})", flush=True)
        print(f"  health:            {base}/healthz", flush=True)
        print(f"  other commands:    siyu member show {result.example_member} --config {path}", flush=True)
        print("  Ctrl-C stops the demo; run it again to pick up where you left off.", flush=True)

    return run_server(settings, port=port, announce=announce)
