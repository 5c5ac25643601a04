"""Calendar preview at scale: 30 days of a ~10-entry calendar over 1M members in SQLite.

Generates (once; reused when the counts match) 1M members with value and life-cycle
layers, stores, owners, WeCom and official-account ids, tags, opt-outs, members who left
and customer groups, plus a calendar of 10 entries over every channel. Then times
`preview_calendar` (what `siyu calendar preview --days 30` runs), each run in a fresh
child process so the page cache is the only thing shared.

    .venv/bin/python bench/calendar_preview.py [--members 1000000] [--days 30] [--runs 3] [--db PATH]
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
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STAMP = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
STORES, STAFF, GROUPS = 20, 200, 2000
TAGS = ["面包控", "勿扰", "蛋糕", "咖啡", "亲子"]
CALENDAR = """\
[[entries]]
id = "new-season"
cron = "0 10 * * fri"
channel = "wecom_mass"
template = "calendar/new_season.txt.j2"
audience = { layers = ["super", "core"], exclude_tags = ["勿扰"] }

[[entries]]
id = "weekly-tips"
cron = "0 20 * * tue"
channel = "oa"
template = "calendar/new_season.txt.j2"
audience = { everyone = true, exclude_tags = ["勿扰"] }

[[entries]]
id = "xmas"
at = "2026-12-24 19:00"
channel = "wecom_mass"
template = "calendar/new_season.txt.j2"
audience = { everyone = true }

[[entries]]
id = "moments"
cron = "30 9 * * mon,thu"
channel = "staff_task"
template = "calendar/moments_post.txt.j2"
audience = { everyone = true }

[[entries]]
id = "win-back"
cron = "0 11 * * sat"
channel = "kf"
template = "calendar/new_season.txt.j2"
audience = { layers = ["dormant"] }

[[entries]]
id = "new-members"
cron = "0 15 * * *"
channel = "oa"
template = "calendar/new_season.txt.j2"
audience = { lifecycle = ["new"] }

[[entries]]
id = "bakers"
cron = "0 12 * * wed"
channel = "oa"
template = "calendar/new_season.txt.j2"
audience = { tags = ["面包控"] }

[[entries]]
id = "store-event"
cron = "0 18 1,15 * *"
channel = "wecom_mass"
template = "calendar/new_season.txt.j2"
audience = { stores = ["s01", "s02"] }

[[entries]]
id = "vip-night"
cron = "0 22 * * sun"
channel = "oa"
template = "calendar/new_season.txt.j2"
audience = { layers = ["super"], lifecycle = ["active"] }

[[entries]]
id = "group-news"
cron = "0 19 * * fri"
channel = "wecom_group_mass"
template = "calendar/new_season.txt.j2"
audience = { everyone = true }
"""


def generate(path: Path, members: int) -> None:
    from storage.migrate import upgrade

    if path.exists():
        with sqlite3.connect(path) as db:
            if db.execute("SELECT count(*) FROM members").fetchone()[0] == members:
                print(f"reusing {path}: {members:,} members", flush=True)
                return
        path.unlink()
    upgrade(f"sqlite:///{path}")
    rng = random.Random(7)
    started = time.perf_counter()
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    db.executemany("INSERT INTO stores (id, code, name) VALUES (?, ?, ?)",
                   ((n, f"s{n:02d}", f"门店{n}") for n in range(1, STORES + 1)))
    db.executemany("INSERT INTO staff (id, userid, name, store_id, role, active) VALUES (?, ?, ?, ?, 'staff', 1)",
                   ((n, f"staff{n}", f"店员{n}", (n - 1) % STORES + 1) for n in range(1, STAFF + 1)))
    db.executemany('INSERT INTO tags (id, name, "group") VALUES (?, ?, ?)', ((n + 1, t, "") for n, t in enumerate(TAGS)))

    def member_rows():  # noqa: ANN202
        for n in range(1, members + 1):
            owner = rng.randint(1, STAFF) if rng.random() < 0.9 else None
            yield (n, f"会员{n}", (owner - 1) % STORES + 1 if owner else None, owner,
                   STAMP if rng.random() < 0.03 else None, STAMP if rng.random() < 0.02 else None, STAMP, STAMP)

    db.executemany(
        "INSERT INTO members (id, name, store_id, owner_staff_id, opted_out_at, left_at, birthday_calendar,"
        " birthday_leap_month, paid_member, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'solar', 0, 0, ?, ?)",
        member_rows(),
    )
    value = [("super", 0.05), ("core", 0.10), ("important", 0.10), ("dormant", 0.25), ("ordinary", 0.50)]
    lifecycle = [("new", 0.05), ("active", 0.30), ("dormant", 0.30), ("ordinary", 0.35)]

    def pick(weights: list[tuple[str, float]]) -> str:
        x, total = rng.random(), 0.0
        for name, weight in weights:
            total += weight
            if x < total:
                return name
        return weights[-1][0]

    db.executemany(
        "INSERT INTO layer_assignments (member_id, scheme, layer, metrics, assigned_at) VALUES (?, ?, ?, '{}', ?)",
        ((n, scheme, pick(weights), STAMP) for n in range(1, members + 1)
         for scheme, weights in (("value", value), ("lifecycle", lifecycle))),
    )
    db.executemany(
        "INSERT INTO member_identities (member_id, platform, external_id, created_at) VALUES (?, ?, ?, ?)",
        ((n, platform, f"{prefix}{n:010d}", STAMP) for n in range(1, members + 1)
         for platform, prefix, share in (("wecom", "wm", 0.8), ("oa", "o", 0.4)) if rng.random() < share),
    )
    db.executemany(
        "INSERT INTO member_tags (member_id, tag_id, source, first_seen, last_seen, hit_count) VALUES (?, ?, 'rule', ?, ?, 1)",
        ((n, tag, STAMP, STAMP) for n in range(1, members + 1)
         for tag, share in ((1, 0.2), (2, 0.05), (3, 0.1), (4, 0.1), (5, 0.05)) if rng.random() < share),
    )
    db.executemany("INSERT INTO customer_groups (id, platform, chat_id, name, owner, created_at) VALUES (?, 'wecom', ?, ?, ?, ?)",
                   ((n, f"wr{n:06d}", f"群{n}", f"staff{(n - 1) % STAFF + 1}", STAMP) for n in range(1, GROUPS + 1)))
    db.executemany("INSERT INTO group_memberships (group_id, user_id, member_id, joined_at) VALUES (?, ?, ?, ?)",
                   ((rng.randint(1, GROUPS), f"wm{n:010d}", n, STAMP) for n in range(1, members + 1) if rng.random() < 0.1))
    db.commit()
    db.execute("ANALYZE")
    db.close()
    print(f"generated {members:,} members in {time.perf_counter() - started:.0f} s", flush=True)


def child(path: Path, days: int) -> None:
    from bot.settings.layers import DEFAULT_SCHEMES
    from content_templates.renderer import Renderer
    from scheduler.calendar import CalendarContext, parse_calendar
    from scheduler.calendar_preview import preview_calendar
    from scheduler.calendar_simulation import PreviewPolicy
    from scheduler.policy import QuietHours
    from storage.engine import create_database_engine, session_factory

    zone = __import__("zoneinfo").ZoneInfo("Asia/Shanghai")
    persona = {"name": "小禾", "title": "", "signature": "小禾", "default_line": "", "tips": {}}
    schemes = {s.name: [layer.name for layer in s.layers] for s in DEFAULT_SCHEMES}
    entries, problems = parse_calendar(CALENDAR, "bench", CalendarContext(zone, schemes, Renderer(), persona))
    assert not problems, problems

    async def run() -> dict:
        engine = create_database_engine(f"sqlite:///{path}")
        started = time.perf_counter()
        preview = await preview_calendar(session_factory(engine), entries, Renderer(), persona,
                                         PreviewPolicy(zone, QuietHours(), {"super": 4}, 2), "value", date(2026, 12, 1), days)
        seconds = time.perf_counter() - started
        await engine.dispose()
        held: dict[str, int] = {}
        for outcome in preview.outcomes:
            for reason, count in outcome.held.items():
                held[reason] = held.get(reason, 0) + count
        return {"seconds": round(seconds, 2), "firings": len(preview.outcomes),
                "reached": sum(o.reached for o in preview.outcomes), "held": held,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}

    print(json.dumps(asyncio.run(run()), ensure_ascii=False))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db", type=Path, default=Path("/tmp/siyu-bench-calendar.db"))
    args = parser.parse_args()
    generate(args.db, args.members)
    for run in range(1, args.runs + 1):
        out = subprocess.run([sys.executable, __file__, "--child", str(args.db), str(args.days)],
                             check=True, capture_output=True, text=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        print(f"run {run}: {args.days} days over {args.members:,} members in {result['seconds']} s — "
              f"{result['firings']} firings, {result['reached']:,} reached, held {result['held']}, "
              f"peak RSS {result['peak_rss_mb']} MB", flush=True)


if __name__ == "__main__":
    main()
