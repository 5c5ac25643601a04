"""Layer recompute at scale: 1M members and 10M orders in SQLite.

Measures, each in a fresh child process (so peak memory is the recompute's own):
  1. a full recompute of the shipped value scheme (RFM quintiles, layer rules,
     assignments, moves) on a database with no assignments yet;
  2. a second full recompute (every assignment rewritten, few moves);
  3. an incremental recompute after 10,000 new orders.

    .venv/bin/python bench/layers_recompute.py [--members 1000000] [--orders 10000000] [--db PATH]

The generated database is kept at --db and reused when it already has the data.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)


def generate(path: Path, members: int, orders: int) -> None:
    from storage.migrate import upgrade

    if path.exists():
        # Count only the generated orders: a previous run added 10,000 more (ids above
        # `orders`), which main() deletes before measuring; counting them would never reuse.
        with sqlite3.connect(path) as db:
            have = db.execute(
                "SELECT (SELECT count(*) FROM members), (SELECT count(*) FROM orders WHERE id <= ?)", (orders,)
            ).fetchone()
        if have == (members, orders):
            upgrade(f"sqlite:///{path}")  # a database from an older version gains the newer tables
            print(f"reusing {path}: {members:,} members, {orders:,} orders", flush=True)
            return
        path.unlink()
    upgrade(f"sqlite:///{path}")
    rng = random.Random(6)
    started = time.perf_counter()
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    stamp = NOW.strftime("%Y-%m-%d %H:%M:%S.%f")
    db.executemany(
        "INSERT INTO members (id, name, birthday_calendar, birthday_leap_month, paid_member, member_since,"
        " created_at, updated_at) VALUES (?, ?, 'solar', 0, ?, '2024-01-01', ?, ?)",
        ((n, f"m{n}", rng.random() < 0.1, stamp, stamp) for n in range(1, members + 1)),
    )
    db.commit()
    # Skewed like a real brand: a fifth of the members place most of the orders.
    heavy = members // 5

    def rows():  # noqa: ANN202
        for n in range(1, orders + 1):
            member = rng.randint(1, heavy) if rng.random() < 0.7 else rng.randint(1, members)
            when = NOW - timedelta(days=rng.random() * 700)
            yield n, f"o{n}", member, rng.randint(500, 50000), when.strftime("%Y-%m-%d %H:%M:%S.%f")

    db.executemany("INSERT INTO orders (id, order_no, member_id, amount_cents, ordered_at) VALUES (?, ?, ?, ?, ?)", rows())
    db.commit()
    db.execute("ANALYZE")
    db.close()
    print(f"generated {members:,} members and {orders:,} orders in {time.perf_counter() - started:.0f} s", flush=True)


def add_orders(path: Path, count: int, members: int) -> None:
    rng = random.Random(7)
    with sqlite3.connect(path) as db:
        first = db.execute("SELECT max(id) FROM orders").fetchone()[0] + 1
        stamp = (NOW + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
        db.executemany(
            "INSERT INTO orders (id, order_no, member_id, amount_cents, ordered_at) VALUES (?, ?, ?, ?, ?)",
            ((n, f"o{n}", rng.randint(1, members), rng.randint(500, 50000), stamp) for n in range(first, first + count)),
        )


def child(path: Path, full: bool, hours_later: float) -> None:
    """One recompute of the value scheme; prints JSON with seconds and peak RSS."""
    from bot.settings.layers import DEFAULT_SCHEMES, RfmSettings
    from content_templates.renderer import Renderer
    from scheduler.layer_jobs import recompute_layers
    from storage.engine import create_database_engine, session_factory

    async def run() -> dict:
        engine = create_database_engine(f"sqlite:///{path}")
        started = time.perf_counter()
        reports = await recompute_layers(
            session_factory(engine), [DEFAULT_SCHEMES[0].scheme()], RfmSettings().spec(), Renderer(),
            timezone.utc, NOW + timedelta(hours=hours_later), full=full,
        )
        seconds = time.perf_counter() - started
        await engine.dispose()
        report = reports[0]
        return {"seconds": round(seconds, 2), "members": report.members, "moves": report.moves,
                "tasks": report.tasks, "full": report.full,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}

    print(json.dumps(asyncio.run(run())))


def measure(path: Path, full: bool, hours_later: float) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path), "--full" if full else "--incremental", str(hours_later)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), sys.argv[3] == "--full", float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/siyu-bench-layers.db"))
    args = parser.parse_args()
    generate(args.db, args.members, args.orders)
    with sqlite3.connect(args.db) as db:  # start from no assignments, as a first run does
        db.execute("DELETE FROM layer_assignments")
        db.execute("DELETE FROM layer_moves")
        db.execute("DELETE FROM layer_runs")
        db.execute("DELETE FROM staff_tasks")
        db.execute("DELETE FROM orders WHERE id > ?", (args.orders,))
    results = {
        "first full": measure(args.db, True, 0),
        "second full": measure(args.db, True, 0.5),
    }
    add_orders(args.db, 10_000, args.members)
    results["incremental after 10,000 orders"] = measure(args.db, False, 2)
    print(f"\n{'run':<34}{'seconds':>9}{'members':>12}{'moves':>11}{'tasks':>7}{'peak RSS MB':>13}")
    for name, r in results.items():
        print(f"{name:<34}{r['seconds']:>9}{r['members']:>12,}{r['moves']:>11,}{r['tasks']:>7}{r['peak_rss_mb']:>13}")


if __name__ == "__main__":
    main()
