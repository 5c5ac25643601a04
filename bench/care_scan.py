"""The daily care scan at scale: 1M members in SQLite.

Generates (once; the file is reused, migrated to this code's schema) 1,000,000 members
with birthdays spread over the year (85% known, 15% of those lunar, some in leap months),
joining days over eight years, layers of the shipped value scheme (5% super), one
platform identity each (WeCom, the official account, the sandbox, or none), 2M
interactions and 1M orders over 400 days.
Then measures, each in a fresh process, the care scan for one day:

  1. the whole scan with the shipped rules (birthday messages, the top layer's birthday and
     anniversary tasks, win-back), six moments off;
  2. the same day again (everything found done); the whole scan again after a dry run in
     the same process (statements compiled, pages in the cache);
  3. the shipped rules without win-back; each part alone: birthdays, win-back,
     anniversaries (the top layer, as shipped; then every layer, which reads every
     member's joining day);
  4. the six-moments plans of every top-layer member (a first run), and
     the next day's run (due touches become tasks).

    .venv/bin/python bench/care_scan.py [--members 1000000] [--db PATH] [--day 2026-11-23]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = datetime(2026, 11, 22, 22, 5, tzinfo=timezone.utc)  # 06:05 in Shanghai on the 23rd
LAYERS = (("super", 0.05), ("core", 0.10), ("important", 0.10), ("dormant", 0.30), ("ordinary", 0.45))


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")


def generate(path: Path, members: int) -> None:
    from storage.migrate import upgrade

    if path.exists():
        with sqlite3.connect(path) as db:
            have = db.execute("SELECT count(*) FROM members").fetchone()[0]
        if have == members:
            upgrade(f"sqlite:///{path}")  # a file kept from an older siyu: its newer migrations
            print(f"reusing {path}: {members:,} members", flush=True)
            return
        path.unlink()
    upgrade(f"sqlite:///{path}")
    rng = random.Random(7)
    started = time.perf_counter()
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    db.executemany("INSERT INTO stores (id, code, name) VALUES (?, ?, ?)", ((n, f"s{n}", f"门店{n}") for n in range(1, 51)))
    db.executemany("INSERT INTO staff (id, userid, name, store_id, role, active) VALUES (?, ?, ?, ?, 'staff', 1)",
                   ((n, f"staff{n}", f"店员{n}", n % 50 + 1) for n in range(1, 201)))
    stamp = _stamp(NOW - timedelta(days=500))
    first_day = date(2018, 1, 1)

    def member_rows():  # noqa: ANN202
        for n in range(1, members + 1):
            month = day = md = None
            calendar, leap = "solar", 0
            if rng.random() < 0.85:
                if rng.random() < 0.15:
                    calendar, month, day = "lunar", rng.randint(1, 12), rng.randint(1, 30)
                    leap = int(rng.random() < 0.03)
                else:
                    when = date(2000, 1, 1) + timedelta(days=rng.randrange(366))  # 2000: 29 February too
                    month, day = when.month, when.day
                md = month * 100 + day
            since = first_day + timedelta(days=rng.randrange(3225))
            left = _stamp(NOW - timedelta(days=10)) if rng.random() < 0.03 else None
            yield (n, f"m{n}", month, day, md, calendar, leap, since.isoformat(), n % 50 + 1, n % 200 + 1, left,
                   stamp, stamp)

    db.executemany(
        "INSERT INTO members (id, name, birth_month, birth_day, birth_md, birthday_calendar, birthday_leap_month,"
        " member_since, store_id, owner_staff_id, left_at, paid_member, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)", member_rows())

    def layer_of() -> str:
        x, total = rng.random(), 0.0
        for name, share in LAYERS:
            total += share
            if x < total:
                return name
        return "ordinary"

    db.executemany("INSERT INTO layer_assignments (member_id, scheme, layer, metrics, assigned_at) VALUES (?, 'value', ?,"
                   " '{}', ?)", ((n, layer_of(), stamp) for n in range(1, members + 1)))

    def identity_rows():  # noqa: ANN202
        for n in range(1, members + 1):
            x = rng.random()
            platform = "wecom" if x < 0.55 else "oa" if x < 0.90 else "sandbox" if x < 0.95 else None
            if platform:
                yield n, platform, f"{platform}-{n}", stamp

    db.executemany("INSERT INTO member_identities (member_id, platform, external_id, created_at) VALUES (?, ?, ?, ?)",
                   identity_rows())
    db.executemany(
        "INSERT INTO interactions (member_id, kind, platform, at) VALUES (?, ?, 'wecom', ?)",
        ((rng.randint(1, members), "message_in" if rng.random() < 0.6 else "message_out",
          _stamp(NOW - timedelta(days=rng.random() * 400))) for _ in range(2 * members)),
    )
    db.executemany(
        "INSERT INTO orders (order_no, member_id, store_id, amount_cents, ordered_at) VALUES (?, ?, 1, ?, ?)",
        ((f"o{n}", rng.randint(1, members), rng.randint(500, 50000), _stamp(NOW - timedelta(days=rng.random() * 400)))
         for n in range(members)),
    )
    db.commit()
    db.execute("ANALYZE")
    db.close()
    print(f"generated {members:,} members in {time.perf_counter() - started:.0f} s", flush=True)


def reset(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM outbox WHERE dedupe_key LIKE 'care:%'")
        db.execute("DELETE FROM six_moments")
        db.execute("DELETE FROM staff_tasks WHERE dedupe_key LIKE 'care-task:%' OR dedupe_key LIKE 'six:%'")


def child(path: Path, variant: str, day: date) -> None:
    """One scan in this process; prints JSON with seconds, rows and peak RSS."""
    from zoneinfo import ZoneInfo

    from content_templates.renderer import Renderer
    from scheduler.care import CarePlan, CareRule
    from scheduler.six_moments import SixMomentsPlan
    from storage.engine import create_database_engine, session_factory

    persona = {"name": "小禾", "title": "", "signature": "小禾", "default_line": "", "tips": {}}
    nothing = CareRule()
    top_anniversary = CareRule(task=True, gift=True, occasions=frozenset({"anniversary"}))
    plans = {
        "shipped": CarePlan(scheme="value", top_layer="super", persona=persona),
        "anniversary-top": CarePlan(scheme="value", top_layer="super", persona=persona, top_rule=top_anniversary,
                                    other_rule=nothing),
        "anniversary-all": CarePlan(scheme="value", top_layer="super", persona=persona, top_rule=top_anniversary,
                                    other_rule=CareRule(message=True, occasions=frozenset({"anniversary"}))),
        "no-winback": CarePlan(scheme="value", top_layer="super", persona=persona,
                               other_rule=CareRule(message=True, occasions=frozenset({"birthday"}))),
        "birthday-alone": CarePlan(scheme="value", top_layer="super", persona=persona,
                                   top_rule=CareRule(task=True, gift=True, occasions=frozenset({"birthday"})),
                                   other_rule=CareRule(message=True, occasions=frozenset({"birthday"}))),
        "winback-alone": CarePlan(scheme="value", top_layer="super", persona=persona, top_rule=nothing,
                                  other_rule=CareRule(message=True, occasions=frozenset({"winback"}))),
        "six-moments": CarePlan(scheme="value", top_layer="super", persona=persona, top_rule=nothing,
                                other_rule=nothing, six_moments=SixMomentsPlan("value", "super")),
    }
    # As `siyu serve` does once started (bot/web/app.py: freeze_startup_objects), where
    # the scan runs every day: what the process loaded to start (modules, tables) is out
    # of the garbage collector's sight, so its full passes do not walk it.
    if not os.environ.get("SIYU_BENCH_NO_FREEZE"):
        gc.collect()
        gc.freeze()
    warm = variant.endswith("+warm")  # a dry run first: statements compiled, pages cached
    plan = plans[variant.removesuffix("+warm")]

    async def run() -> dict:
        from scheduler.care import run_care_scan

        engine = create_database_engine(f"sqlite:///{path}")
        zone = ZoneInfo("Asia/Shanghai")
        if warm:
            await run_care_scan(session_factory(engine), plan, Renderer(), zone, NOW, day=day, dry_run=True)
        report = await run_care_scan(session_factory(engine), plan, Renderer(), zone, NOW, day=day)
        await engine.dispose()
        six = report.six_moments
        return {"seconds": round(report.seconds, 3), "enqueued": report.total, "already": report.already,
                "counts": {k: dict(v) for k, v in report.counts.items()},
                "six_planned": six.planned_members if six else 0, "six_touches": six.planned_touches if six else 0,
                "six_tasks": six.tasks if six else 0,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}

    print(json.dumps(asyncio.run(run())))


def measure(path: Path, variant: str, day: date) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(path), variant, day.isoformat()],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), sys.argv[3], date.fromisoformat(sys.argv[4]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/siyu-bench-care.db"))
    parser.add_argument("--day", type=date.fromisoformat, default=date(2026, 11, 23))
    args = parser.parse_args()
    generate(args.db, args.members)
    results = {}
    reset(args.db)
    results["whole scan, shipped rules"] = measure(args.db, "shipped", args.day)
    results["the same day again"] = measure(args.db, "shipped", args.day)
    reset(args.db)
    results["whole scan, after a dry run"] = measure(args.db, "shipped+warm", args.day)
    reset(args.db)
    results["shipped rules without win-back"] = measure(args.db, "no-winback", args.day)
    reset(args.db)
    results["birthday alone"] = measure(args.db, "birthday-alone", args.day)
    reset(args.db)
    results["win-back alone"] = measure(args.db, "winback-alone", args.day)
    reset(args.db)
    results["anniversary alone, top layer"] = measure(args.db, "anniversary-top", args.day)
    reset(args.db)
    results["anniversary alone, every layer"] = measure(args.db, "anniversary-all", args.day)
    reset(args.db)
    results["six moments, first plans"] = measure(args.db, "six-moments", args.day)
    results["six moments, the next day"] = measure(args.db, "six-moments", args.day + timedelta(days=1))
    reset(args.db)
    print(f"\n{'run':<34}{'seconds':>9}{'enqueued':>10}{'already':>9}{'planned':>9}{'6m tasks':>9}{'RSS MB':>8}"
          "  counts")
    for name, r in results.items():
        print(f"{name:<34}{r['seconds']:>9}{r['enqueued']:>10,}{r['already']:>9,}{r['six_planned']:>9,}"
              f"{r['six_tasks']:>9,}{r['peak_rss_mb']:>8}  {json.dumps(r['counts'], ensure_ascii=False)}")


if __name__ == "__main__":
    main()
