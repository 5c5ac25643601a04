"""Outcomes and lifetime value at scale, on PostgreSQL.

Generates (set-based, with generate_series) N members, M orders over two years and T
touches over the last 60 days (10 % held out; entries, occasions, channels, staff), then
measures, each in a fresh child process so peak memory is the step's own:
  1. attribution and lift for one month (the report by source: per-member outcomes,
     the comparison sums, last-touch credit, the intervals);
  2. the incremental daily update: the same report for one day;
  3. the LTV fit (the order summary in one aggregate, BG/NBD + Gamma-Gamma);
  4. scoring every member (numpy) and writing the scores.

    SIYU_BENCH_PG_URL=postgresql://… .venv/bin/python bench/outcomes.py \\
        [--members 1000000] [--orders 10000000] [--touches 5000000]

The database's public schema is replaced. The data are kept and reused when the counts
match, so the measuring can be run again without generating.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)
STEPS = ("month", "day", "fit", "score")


def _sync(url: str):  # noqa: ANN202
    from sqlalchemy import create_engine

    from storage.engine import sync_url

    return create_engine(sync_url(url), isolation_level="AUTOCOMMIT")


def generate(url: str, members: int, orders: int, touches: int) -> None:
    from sqlalchemy import text

    from storage.migrate import upgrade

    engine = _sync(url)
    with engine.connect() as c:
        try:
            have = c.execute(text("SELECT (SELECT count(*) FROM members), (SELECT count(*) FROM orders),"
                                  " (SELECT count(*) FROM outcome_touches)")).one()
        except Exception:  # noqa: BLE001  (no schema yet)
            have = None
    if have is not None and tuple(have) == (members, orders, touches):
        print(f"reusing the database: {members:,} members, {orders:,} orders, {touches:,} touches", flush=True)
        return
    with engine.connect() as c:
        c.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        c.execute(text("CREATE SCHEMA public"))
    upgrade(url)
    now = NOW.isoformat()
    started = time.perf_counter()
    statements = [
        "INSERT INTO stores (id, code, name) SELECT g, 's' || g, '门店' || g FROM generate_series(1, 20) g",
        "INSERT INTO staff (id, userid, name, store_id, role, active) "
        " SELECT g, 'u' || g, '店员' || g, 1 + g % 20, 'staff', true FROM generate_series(1, 200) g",
        f"INSERT INTO members (id, name, birthday_calendar, birthday_leap_month, paid_member, member_since,"
        f" store_id, owner_staff_id, created_at, updated_at)"
        f" SELECT g, 'm' || g, 'solar', false, false, DATE '2024-01-01', 1 + g % 20, 1 + g % 200,"
        f" TIMESTAMPTZ '{now}', TIMESTAMPTZ '{now}' FROM generate_series(1, {members}) g",
        # Skewed like a real brand: a fifth of the members place most of the orders; each
        # member buys from her own first day over her own lifetime (some stop early) and
        # spends around her own mean, so BG/NBD and Gamma-Gamma have something to find.
        f"INSERT INTO orders (id, order_no, member_id, amount_cents, ordered_at)"
        f" SELECT g, 'o' || g, m, 500 + (m * 31337) % 20000 + floor(random() * 5000)::int,"
        f" TIMESTAMPTZ '{now}' - INTERVAL '700 days' + INTERVAL '700 days' * (s + random() * l)"
        f" FROM (SELECT g, m, ((m * 7919) % 1000) / 2000.0 AS s,"
        f"       ((m * 104729) % 1000) / 1000.0 * (1 - ((m * 7919) % 1000) / 2000.0) AS l"
        f"  FROM (SELECT g, CASE WHEN random() < 0.7 THEN 1 + floor(random() * {members // 5})::bigint"
        f"                       ELSE 1 + floor(random() * {members})::bigint END AS m"
        f"        FROM generate_series(1, {orders}) g) a) b",
        f"INSERT INTO outcome_touches (id, member_id, at, source_kind, source_ref, staff_id, store_id, layer,"
        f" held_out, ref)"
        f" SELECT g, m, TIMESTAMPTZ '{now}' - random() * INTERVAL '60 days',"
        f" (ARRAY['entry','entry','occasion','channel','auto_reply','staff'])[1 + g % 6],"
        f" 'ref' || (g % 7), 1 + m % 200, 1 + m % 20,"
        f" (ARRAY['super','core','ordinary','dormant'])[1 + m % 4], random() < 0.1, 'b' || g"
        f" FROM (SELECT g, 1 + floor(random() * {members})::int AS m FROM generate_series(1, {touches}) g) t",
        "ANALYZE",
    ]
    with engine.connect() as c:
        # Foreign keys are not checked row by row while generating (the ids are made valid),
        # and the big tables' indexes are built once at the end, not row by row.
        c.execute(text("SET session_replication_role = replica"))
        rebuild: list[str] = []
        for table in ("orders", "outcome_touches"):
            for name, definition in c.execute(text(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                    " WHERE conrelid = CAST(:t AS regclass) AND contype = 'u'"), {"t": table}).all():
                c.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
                rebuild.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            for name, definition in c.execute(text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t"
                    " AND indexname NOT LIKE '%pkey'"), {"t": table}).all():
                c.execute(text(f'DROP INDEX "{name}"'))
                rebuild.append(definition)
        for statement in [*statements[:-1], *rebuild, statements[-1]]:
            step = time.perf_counter()
            c.execute(text(statement))
            print(f"  {statement.split('(')[0].strip()[:60]:<60} {time.perf_counter() - step:6.1f} s", flush=True)
    engine.dispose()
    print(f"generated {members:,} members, {orders:,} orders, {touches:,} touches in "
          f"{time.perf_counter() - started:.0f} s", flush=True)


async def _measure(url: str, step: str) -> dict[str, float]:
    from bot.settings.outcomes import OutcomesSettings
    from bot.shared.outcomes_report import outcomes_report
    from scheduler.ltv_job import fit_and_score
    from storage.engine import create_database_engine, session_factory
    from storage.ltv import order_summary, write_scores

    engine = create_database_engine(url)
    sessions = session_factory(engine)
    zone = timezone.utc
    figures: dict[str, float] = {}
    try:
        started = time.perf_counter()
        if step in ("month", "day"):
            end = (NOW - timedelta(days=1)).date()
            start = end - timedelta(days=29) if step == "month" else end
            report = await outcomes_report(sessions, OutcomesSettings(), zone, "source", start, end)  # type: ignore[arg-type]
            figures["rows"] = len(report.rows)
            figures["reached"] = sum(r.reached.members for r in report.rows)
        else:
            async with sessions() as session:
                summary = await order_summary(session, NOW)
            figures["summary_s"] = time.perf_counter() - started
            fitted = time.perf_counter()
            params, scores = fit_and_score(summary, 90)
            figures["fit_and_score_s"] = time.perf_counter() - fitted
            figures["customers"] = params["customers"]
            if step == "score":
                import numpy as np

                from scheduler import ltv

                x = np.asarray(summary.orders, dtype=np.float64) - 1
                t_x = np.asarray(summary.first_to_last_days, dtype=np.float64) / 7
                T = np.asarray(summary.first_to_date_days, dtype=np.float64) / 7
                mean = np.asarray(summary.cents, dtype=np.float64) / 100 / (x + 1)
                bg = ltv.BgNbd(**{k: params["bgnbd"][k] for k in ("r", "alpha", "a", "b")}, customers=0,
                               log_likelihood=0.0)
                gg = ltv.GammaGamma(**{k: params["gamma_gamma"][k] for k in ("p", "q", "v")}, customers=0,
                                    log_likelihood=0.0)
                scored = time.perf_counter()
                ltv.score(bg, gg, 90 / 7, x, t_x, T, mean)
                figures["numpy_score_s"] = time.perf_counter() - scored
                written = time.perf_counter()
                async with sessions() as session, session.begin():
                    await write_scores(session, date(2026, 11, 23), summary.member_ids, scores.p_alive.tolist(),
                                       scores.orders.tolist(), (scores.value * 100).tolist(), NOW)
                figures["write_s"] = time.perf_counter() - written
                figures["params"] = params  # type: ignore[assignment]
        figures["seconds"] = time.perf_counter() - started
    finally:
        await engine.dispose()
    figures["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--touches", type=int, default=5_000_000)
    parser.add_argument("--url", default=os.environ.get("SIYU_BENCH_PG_URL"))
    parser.add_argument("--step", choices=STEPS)  # internal: one measurement in this process
    args = parser.parse_args()
    if not args.url:
        sys.exit("set SIYU_BENCH_PG_URL (a PostgreSQL database whose public schema may be replaced) or --url")
    if args.step:
        print(json.dumps(asyncio.run(_measure(args.url, args.step)), default=str))
        return
    generate(args.url, args.members, args.orders, args.touches)
    for step in STEPS:
        out = subprocess.run([sys.executable, __file__, "--url", args.url, "--step", step],
                             capture_output=True, text=True, check=True).stdout
        print(step, out.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
