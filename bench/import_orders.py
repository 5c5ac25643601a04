"""Benchmark: `siyu import orders` of a million-row CSV into a fresh SQLite file.

Makes a fresh, migrated SQLite database with `--members` members (inserted directly, a
chunk per statement), writes an orders CSV of `--orders` rows with Chinese headers as a
till exports it (订单号, 会员号, 实付金额 like "¥1,280.50", 下单时间 "2026-11-01 14:30:00",
门店), each row's member one of those members; then imports it with the import's own
code (bot.imports.run.run_import, as `siyu import orders` runs it) and imports the same
file a second time, which must add nothing. Reports rows per second of each run and the
process's peak RSS (resource.getrusage). The target (issue 6) is at least 50,000 rows/s.

    .venv/bin/python bench/import_orders.py [--orders 1000000] [--members 100000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.imports.run import run_import  # noqa: E402
from storage.engine import create_sync_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Member, Order, Store  # noqa: E402

TARGET = 50_000
STORES = ("jingan", "xuhui", "pudong", "minhang")


def prepare_database(url: str, members: int) -> None:
    upgrade(url)
    engine = create_sync_engine(url)
    now = datetime.now(timezone.utc)
    try:
        with engine.begin() as connection:
            connection.execute(insert(Store.__table__), [{"code": code, "name": code} for code in STORES])
            for start in range(0, members, 20_000):
                connection.execute(insert(Member.__table__), [
                    {
                        "member_no": f"M{n:07d}", "name": f"会员{n}", "birthday_calendar": "solar",
                        "birthday_leap_month": False, "paid_member": False, "created_at": now, "updated_at": now,
                    }
                    for n in range(start, min(start + 20_000, members))
                ])
    finally:
        engine.dispose()


def write_orders(path: Path, orders: int, members: int, seed: int) -> None:
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, 9, 0)
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["订单号", "会员号", "实付金额", "下单时间", "门店"])
        for n in range(orders):
            cents = rng.randint(100, 500_000)
            amount = f"¥{cents // 100:,}.{cents % 100:02d}" if n % 3 else f"{cents / 100:.2f}"
            at = start + timedelta(seconds=n * 29 + rng.randint(0, 28))
            writer.writerow([
                f"SO{n:09d}", f"M{rng.randrange(members):07d}", amount, at.strftime("%Y-%m-%d %H:%M:%S"),
                STORES[n % len(STORES)] if n % 5 else "",
            ])


def timed_import(url: str, path: Path) -> tuple[float, object]:
    began = time.perf_counter()
    report = run_import(url, "orders", path, {}, {}, zone=ZoneInfo("Asia/Shanghai"), progress=False)
    return time.perf_counter() - began, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the files (default: a temporary folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.dir or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        database, orders_csv = folder / "bench-import.db", folder / "orders.csv"
        for stale in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            stale.unlink(missing_ok=True)
        url = f"sqlite:///{database}"
        began = time.perf_counter()
        prepare_database(url, args.members)
        write_orders(orders_csv, args.orders, args.members, args.seed)
        size = orders_csv.stat().st_size
        before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"prepared {args.members:,} members and {args.orders:,} orders ({size / 1e6:.0f} MB CSV) "
              f"in {time.perf_counter() - began:.1f} s; peak RSS so far {before_mb:.0f} MB", flush=True)

        first_seconds, first = timed_import(url, orders_csv)
        second_seconds, second = timed_import(url, orders_csv)
        engine = create_sync_engine(url)
        with engine.connect() as connection:
            stored = connection.execute(select(func.count()).select_from(Order.__table__)).scalar_one()
        engine.dispose()
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    for label, seconds, report in (("first import", first_seconds, first), ("same file again", second_seconds, second)):
        rate = report.read / seconds  # type: ignore[attr-defined]
        print(f"{label:16} {report.read:,} rows in {seconds:.1f} s = {rate:,.0f} rows/s; "  # type: ignore[attr-defined]
              f"imported {report.imported:,}, unchanged {report.unchanged:,}, "  # type: ignore[attr-defined]
              f"rejected {report.rejected:,}")  # type: ignore[attr-defined]
    print(f"orders in the database: {stored:,}; peak RSS {peak_mb:.0f} MB (the process, "
          f"{peak_mb - before_mb:.0f} MB above what it had before the imports)")
    ok = (
        first.imported == args.orders and second.imported == 0  # type: ignore[attr-defined]
        and second.unchanged == args.orders and stored == args.orders  # type: ignore[attr-defined]
    )
    rate = first.read / first_seconds  # type: ignore[attr-defined]
    print(f"target ≥ {TARGET:,} rows/s: {'met' if rate >= TARGET else 'NOT met'}; idempotent: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
