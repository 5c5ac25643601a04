"""What metrics, request ids and log lines add to the paths they watch (issue 18).

    .venv/bin/python bench/observability.py [--calls 200000]

Times, per call and in one run: what a callback's route now does besides storing the
update (request id, counter, a DEBUG line that is not written at INFO), what handling one
inbox row and one send add (histograms, counters), stamping the request id into an outbox
row's meta, and one log line written as text and as JSON. The in-run baseline is an empty
function call. Prints the date and the machine's load, since the machine is shared.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import timeit
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from bot.cli.logs import RequestIds, formatter_for
from storage.metrics import CALLBACKS_RECEIVED, record_handling, record_send
from storage.tracing import request_id_of, stamped, traced

KEY = "wecom:msg:7385520412645851234"
quiet = logging.getLogger("bench.quiet")
quiet.setLevel(logging.INFO)


def nothing() -> None:
    pass


def callback_additions() -> None:
    with traced(request_id_of(KEY)):
        CALLBACKS_RECEIVED.labels("wecom").inc()
        quiet.debug("stored a %s callback: %s", "wecom", "message")


NOW = datetime.now(timezone.utc)


def handled_row() -> None:
    record_handling("message", 0.004, failed=False)


def one_send() -> None:
    record_send("wecom", "message", "sent", "", 0.05, '{"conversation": "kf:wk1", "rid": "3f9a1c2b7d4e"}', NOW)


def stamp_row() -> None:
    with traced("3f9a1c2b7d4e"):
        stamped('{"conversation": "kf:wk1"}')


def log_line(kind: str) -> logging.Logger:
    logger = logging.getLogger(f"bench.{kind}")
    logger.propagate = False
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(formatter_for(kind, ZoneInfo("Asia/Shanghai")))
    handler.addFilter(RequestIds())
    logger.addHandler(handler)
    return logger


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200_000)
    calls = parser.parse_args().calls
    text, json_lines = log_line("text"), log_line("json")
    cases = {
        "empty call (baseline)": nothing,
        "callback route: request id, counter, unwritten DEBUG line": callback_additions,
        "one inbox row handled: histogram": handled_row,
        "one send: counter, histogram": one_send,
        "request id stamped into an outbox row's meta": stamp_row,
        "one log line, text": lambda: text.warning("outbox row %s failed: %s", 12, "errcode 45009"),
        "one log line, JSON": lambda: json_lines.warning("outbox row %s failed: %s", 12, "errcode 45009"),
    }
    print(f"{datetime.now():%Y-%m-%d %H:%M}, load average {os.getloadavg()[0]:.1f}, {calls} calls, best of 5")
    for name, case in cases.items():
        best = min(timeit.repeat(case, number=calls, repeat=5)) / calls
        print(f"  {name}: {best * 1e6:.2f} µs")


if __name__ == "__main__":
    main()
