"""The operator console's pages at brand scale: 1M members in SQLite, timed over HTTP.

Builds once per size (kept at --db, default /tmp/siyu-bench/console-<members>.db) a brand
on the calendar bench's builder — members with value and life-cycle layers, owners, WeCom
and official-account ids, five tags, customer groups — here with 4 stores and 20 staff,
then adds names (surnames as common as in China) and phones, birthdays and joining days,
the evolution scheme's layers, 25 more tags (about 3 per member, set by rules and by
staff), and the calendar bench's 10 entries. What depends on today is rebuilt when the
day has changed: 0.3 interactions per member over the last 30 days (one member has
3,000), 90 days of engagement snapshots, 0.05 staff tasks per member over the last 60
days (open, done, skipped), and an outbox of the last 30 days.

Then starts the real app (`bot.web.app.build_app`, console on, `server.role = "webhook"` so
that no scheduled job writes while the pages are timed) in a child process on
127.0.0.1, logs in as an operator and GETs each page --runs times in a row: first,
median and max wall time, the server's CPU per request, and its peak RSS while serving
that page (the high-water mark is reset before each page). Last, while each page that
took 0.3 s or more (--slow) is served again (the calendar: a month not yet viewed), a
quick console page, and then in another serving a signed WeCom callback, is sent again
and again: how long each waited beyond the same request alone, at worst, as timed and
less the time the server's loop and the client stood ready for a CPU others held.

    .venv/bin/python bench/console_pages.py [--members 1000000] [--runs 5] [--db PATH]
    .venv/bin/python bench/console_pages.py --members 20000     # a quick check
    .venv/bin/python bench/console_pages.py --tree ../other-checkout   # serve another checkout's code
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from datetime import date, datetime, timedelta, timezone
from itertools import accumulate
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp

ROOT = Path(os.environ.get("SIYU_BENCH_TREE") or Path(__file__).resolve().parent.parent).resolve()
sys.path.insert(0, str(ROOT))

from bench import calendar_preview  # noqa: E402

BUILD = 1  # bump when the generated data changes: cached files of another build are made afresh
ZONE = ZoneInfo("Asia/Shanghai")
STORES = (("s01", "静安店"), ("s02", "徐汇店"), ("s03", "浦东店"), ("s04", "长宁店"))  # the calendar's codes
STAFF_NAMES = "陈静 刘洋 周敏 李娟 张伟 王磊 吴婷 赵倩 孙丽 郑爽 何欢 林琳 马骁 高远 罗兰 黄蓉 谢娜 宋佳 韩雪 唐宁".split()
PASSWORD = "bench-password"
WECOM_TOKEN, WECOM_CORP, WECOM_AGENT = "QDG6eK", "wwbenchcorp0001", 1000002
WECOM_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
# Surnames and their share of the population (%); the rest spread over RARER ones.
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余"
SURNAME_SHARES = (7.1, 7.0, 6.7, 5.4, 4.5, 3.1, 2.2, 2.0, 1.8, 1.7, 1.4, 1.4, 1.2, 1.2, 1.1, 1.1, 1.0, 0.9, 0.9, 0.8,
                  0.8, 0.7, 0.6, 0.5, 0.5, 0.5, 0.5, 0.4, 0.4, 0.4, *[0.3] * 10)
RARER = "白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
GIVEN = "芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红梅琳雪婷慧颖佳欣怡晨宇浩然子涵雨萱思彤可馨诗琪梦瑶"
NOBODY = "欧阳"  # no member's name holds it: a search that finds nothing reads every member
# After the calendar builder's five tags (ids 1-5, group ""): (group, name), commonest first.
MORE_TAGS = (("口味偏好", "欧包"), ("场景", "早餐"), ("生活方式", "上班族"), ("口味偏好", "低糖"), ("场景", "下午茶"),
             ("生活方式", "宝妈"), ("渠道", "门店海报"), ("口味偏好", "巧克力"), ("价值", "价格敏感"), ("场景", "生日会"),
             ("渠道", "小程序"), ("口味偏好", "抹茶"), ("生活方式", "健身"), ("场景", "节日送礼"), ("价值", "储值卡"),
             ("渠道", "朋友推荐"), ("口味偏好", "全麦"), ("生活方式", "学生"), ("价值", "高客单"), ("场景", "公司团购"),
             ("口味偏好", "水果挞"), ("渠道", "直播"), ("服务", "需要发票"), ("生活方式", "素食"), ("服务", "投诉过"))
_WEIGHTS = [1 / (n + 1) ** 0.8 for n in range(len(MORE_TAGS))]
SHARES = [2.5 * w / sum(_WEIGHTS) for w in _WEIGHTS]  # 2.5 more tags a member, plus the builder's 0.5
EVOLUTION = (("partner", 0.005), ("referrer", 0.015), ("vip", 0.03), ("paying", 0.10), ("target", 0.85))
SAID = ("想订一个生日蛋糕", "今天有欧包吗", "周末店里几点关门", "上次的吐司很好吃", "可以开发票吗", "有低糖的吗")
ANSWERED = ("您好，今天欧包十点出炉", "生日蛋糕需要提前一天预订哦", "周末营业到晚上九点", "低糖款在小程序里可以选")
TASK_KINDS = (("care", "关怀礼物"), ("six_moments", "六次触达"), ("at_risk", "流失风险"), ("handoff_reply", "转人工回复"),
              ("churn_follow_up", "流失回访"), ("top_layer_welcome", "新晋顶层欢迎"))
ACTIVE_SHARE = {"super": 0.12, "core": 0.06, "important": 0.03, "dormant": 0.002, "ordinary": 0.01, "new": 0.05,
                "active": 0.03, "partner": 0.2, "referrer": 0.1, "vip": 0.08, "paying": 0.04, "target": 0.008}


def _stamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


# -- the brand -------------------------------------------------------------------------

def build(path: Path, members: int) -> dict:
    """The database at `path` for `members`, made or reused; returns its facts (ids to ask for)."""
    from storage.migrate import upgrade

    facts = json.loads(_sidecar(path).read_text()) if _sidecar(path).exists() else {}
    if facts.get("build") != BUILD or facts.get("members") != members or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"), _sidecar(path)):
            stale.unlink(missing_ok=True)
        # The calendar bench's builder, with this brand's 4 stores and 20 staff.
        calendar_preview.STORES, calendar_preview.STAFF = len(STORES), len(STAFF_NAMES)
        calendar_preview.generate(path, members)
        started = time.perf_counter()
        facts = enrich(path, members)
        print(f"enriched in {time.perf_counter() - started:.0f} s", flush=True)
        _sidecar(path).write_text(json.dumps(facts))
    else:
        print(f"reusing {path}: {members:,} members", flush=True)
    upgrade(f"sqlite:///{path}")  # a migration added since the file was made
    today = datetime.now(ZONE).date()
    if facts.get("dated") != today.isoformat():
        started = time.perf_counter()
        dated(path, members, facts["heavy"], today)
        facts["dated"] = today.isoformat()
        _sidecar(path).write_text(json.dumps(facts))
        print(f"interactions, snapshots, tasks and outbox up to {today} in {time.perf_counter() - started:.0f} s",
              flush=True)
    return facts


def enrich(path: Path, members: int) -> dict:
    rng = random.Random(11)
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    db.executemany("UPDATE stores SET name = ?, city = '上海' WHERE code = ?", ((name, code) for code, name in STORES))
    db.executemany("UPDATE staff SET name = ?, role = ? WHERE id = ?",
                   ((name, "manager" if n <= len(STORES) else "staff", n) for n, name in enumerate(STAFF_NAMES, 1)))
    weights = [*SURNAME_SHARES, *[(100 - sum(SURNAME_SHARES)) / len(RARER)] * len(RARER)]
    picked = rng.choices(SURNAMES + RARER, cum_weights=list(accumulate(weights)), k=members)
    heavy = members * 3 // 4

    def people():  # noqa: ANN202
        for n, surname in enumerate(picked, 1):
            name = surname + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))
            phone = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}" if rng.random() < 0.95 else None
            month = day = md = None
            if rng.random() < 0.85:
                born = date(2000, 1, 1) + timedelta(days=rng.randrange(366))
                month, day, md = born.month, born.day, born.month * 100 + born.day
            since = date(2019, 1, 1) + timedelta(days=rng.randrange(2860))
            yield name, phone, month, day, md, since.isoformat(), _stamp(datetime(since.year, since.month, since.day,
                                                                                   12, tzinfo=ZONE)), n

    db.executemany("UPDATE members SET name = ?, phone = ?, birth_month = ?, birth_day = ?, birth_md = ?,"
                   " member_since = ?, created_at = ? WHERE id = ?", people())
    phone = db.execute("SELECT phone FROM members WHERE id = ?", (heavy,)).fetchone()[0] or "13800001234"
    stamp = calendar_preview.STAMP

    def evolution():  # noqa: ANN202
        for n in range(1, members + 1):
            x, total = rng.random(), 0.0
            for layer, share in EVOLUTION:
                total += share
                if x < total:
                    break
            yield n, layer, stamp

    db.executemany("INSERT INTO layer_assignments (member_id, scheme, layer, metrics, assigned_at)"
                   " VALUES (?, 'evolution', ?, '{}', ?)", evolution())
    first_tag = len(calendar_preview.TAGS) + 1
    db.executemany('INSERT INTO tags (id, name, "group") VALUES (?, ?, ?)',
                   ((first_tag + n, name, group) for n, (group, name) in enumerate(MORE_TAGS)))
    db.execute("UPDATE member_tags SET source_ref = 'r' || printf('%02d', tag_id) WHERE source = 'rule'")
    days = [_stamp(datetime.now(timezone.utc) - timedelta(days=d, hours=rng.random() * 24)) for d in range(60)]

    def tagged():  # noqa: ANN202
        for n in range(1, members + 1):
            for k, share in enumerate(SHARES):
                if rng.random() < share:
                    by_staff = rng.random() < 0.15
                    seen = rng.choice(days)
                    yield (n, first_tag + k, "staff" if by_staff else "rule",
                           f"staff{rng.randint(1, len(STAFF_NAMES))}" if by_staff else f"r{first_tag + k:02d}",
                           stamp, seen, rng.randint(1, 5))

    db.executemany("INSERT INTO member_tags (member_id, tag_id, source, source_ref, first_seen, last_seen, hit_count)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?)", tagged())
    moves = [("value", "ordinary", "important"), ("value", "important", "core"), ("lifecycle", "new", "active"),
             ("value", "core", "super")]
    db.executemany("INSERT INTO layer_moves (member_id, scheme, from_layer, to_layer, moved_at) VALUES (?, ?, ?, ?, ?)",
                   ((heavy, s, a, b, _stamp(datetime(2026, 3 + 2 * n, 1, tzinfo=timezone.utc)))
                    for n, (s, a, b) in enumerate(moves)))
    db.commit()
    tags = dict(db.execute("SELECT name, id FROM tags"))
    db.close()
    return {"build": BUILD, "members": members, "heavy": heavy, "phone_tail": phone[-4:], "common_tag": tags["咖啡"],
            "rare_tag": tags[MORE_TAGS[-1][1]]}


def dated(path: Path, members: int, heavy: int, today: date) -> None:
    """What is relative to today, made afresh: interactions, snapshots, tasks, outbox."""
    rng = random.Random(today.toordinal())
    now = datetime.now(timezone.utc)
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    for table in ("interactions", "engagement_days", "staff_tasks", "outbox"):
        db.execute(f"DELETE FROM {table}")
    db.execute("DELETE FROM orders WHERE member_id = ?", (heavy,))
    talkers = max(1, members // 5)  # a fifth of the members say most

    def said(member: int, when: datetime) -> tuple:
        x = rng.random()
        kind = "message_in" if x < 0.45 else "message_out" if x < 0.8 else "staff_out" if x < 0.9 else "event"
        text = rng.choice(SAID) if kind == "message_in" else rng.choice(ANSWERED) if kind != "event" else None
        return member, kind, "wecom", _stamp(when), text

    db.executemany("INSERT INTO interactions (member_id, kind, platform, at, text) VALUES (?, ?, ?, ?, ?)", (
        said(rng.randint(1, talkers) if rng.random() < 0.7 else rng.randint(1, members),
             now - timedelta(days=rng.random() * 30)) for _ in range(members * 3 // 10)))
    db.executemany("INSERT INTO interactions (member_id, kind, platform, at, text) VALUES (?, ?, ?, ?, ?)",
                   (said(heavy, now - timedelta(days=rng.random() * 90)) for _ in range(3000)))
    db.executemany("INSERT INTO orders (order_no, member_id, store_id, amount_cents, ordered_at) VALUES (?, ?, 1, ?, ?)",
                   ((f"bench-heavy-{n}", heavy, rng.randint(1500, 30000), _stamp(now - timedelta(days=9 * n + 1)))
                    for n in range(40)))
    counts = db.execute("SELECT scheme, layer, count(*) FROM layer_assignments GROUP BY scheme, layer").fetchall()

    def snapshots():  # noqa: ANN202
        for back in range(1, 91):
            day = today - timedelta(days=back)
            for scheme, layer, count in counts:
                held = round(count * (1 - 0.0004 * back))
                active = round(held * ACTIVE_SHARE.get(layer, 0.01) * rng.uniform(0.7, 1.3))
                said_in = round(active * rng.uniform(1.2, 2.0))
                yield (day.isoformat(), scheme, layer, held, round(held * 0.0005), round(held * 0.0002), active,
                       said_in, round(said_in * 0.8), round(said_in * 0.6), round(said_in * 0.2), rng.uniform(20, 400),
                       round(active * 0.05), round(active * 0.02), round(active * 0.015), round(active * 0.1),
                       round(active * 0.1) * 4200, _stamp(now))

    db.executemany("INSERT INTO engagement_days (day, scheme, layer, members, joined, left, active, messages_in,"
                   " messages_out, bot_replies, staff_replies, median_first_reply_seconds, care_sent, tasks_due,"
                   " tasks_done_on_time, orders, revenue_cents, computed_at)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", snapshots())
    db.execute("CREATE TEMP TABLE plan (n INTEGER, staff_id INTEGER, member_id INTEGER, kind TEXT, label TEXT,"
               " due TEXT, status TEXT, note TEXT, created TEXT, done TEXT)")

    def tasks():  # noqa: ANN202
        for n in range(max(100, members // 20)):
            due = today - timedelta(days=rng.randrange(-7, 60))
            x = rng.random() if due < today else 1.0
            status = "done" if x < 0.7 else "skipped" if x < 0.78 else "open"
            done = _stamp(datetime(due.year, due.month, due.day, 18, tzinfo=ZONE) + timedelta(hours=rng.uniform(
                -30, 30))) if status != "open" else None
            kind, label = rng.choice(TASK_KINDS)
            yield (n, rng.randint(1, len(STAFF_NAMES)) if rng.random() < 0.97 else None, rng.randint(1, members),
                   kind, label, due.isoformat(), status, "她不在上海" if status == "skipped" else None,
                   _stamp(datetime(due.year, due.month, due.day, 6, tzinfo=ZONE) - timedelta(days=1)), done)

    db.executemany("INSERT INTO plan VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", tasks())
    db.execute("INSERT INTO staff_tasks (dedupe_key, staff_id, member_id, kind, title, body, due_date, status, note,"
               " created_at, done_at) SELECT 'bench:' || p.n, p.staff_id, p.member_id, p.kind,"
               " p.label || '：' || coalesce(m.name, ''), '', p.due, p.status, p.note, p.created, p.done"
               " FROM plan p LEFT JOIN members m ON m.id = p.member_id ORDER BY p.n")
    small = max(10, members // 5000)
    states = [("sent", None)] * (members // 10) + [("pending", None)] * small + [("pending", "errcode 45009")] * small + \
        [("deferred", "quiet hours")] * small + [("failed", "errcode 84061: not a customer")] * (small // 4) + \
        [("held", "weekly cap")] * small + [("held", "opted out")] * (small // 2)

    def outbox():  # noqa: ANN202
        for n, (status, error) in enumerate(states):
            member = rng.randint(1, members)
            when = now - timedelta(days=rng.random() * 30) if status != "pending" else now - timedelta(minutes=n % 50)
            if status == "deferred":
                when = now + timedelta(hours=8)
            yield (f"bench:{n}", "wecom", f"wm{member:010d}", member, rng.choice(("service", "marketing", "care")),
                   "您好，这是小禾", status, 1 if error else 0, _stamp(when), _stamp(when),
                   _stamp(when + timedelta(seconds=2)) if status == "sent" else None, error)

    db.executemany("INSERT INTO outbox (dedupe_key, platform, recipient, member_id, kind, route, meta, body, status,"
                   " attempts, not_before, created_at, sent_at, last_error)"
                   " VALUES (?, ?, ?, ?, ?, 'message', '{}', ?, ?, ?, ?, ?, ?, ?)", outbox())
    db.commit()
    db.execute("ANALYZE")
    db.close()


def config_text(path: Path, role: str = "webhook") -> str:
    """The server's configuration: this database, WeCom callbacks (its API unreachable:
    nothing is sent), one operator login, a rule per tag."""
    from bot.console.passwords import hash_password

    rules = "".join(f'[[tags.rules]]\nid = "r{n:02d}"\ntag = "{name}"\ngroup = "{group}"\nkeywords = ["{name}"]\n\n'
                    for n, (group, name) in enumerate(
                        [("", t) for t in calendar_preview.TAGS] + list(MORE_TAGS), 1))
    return (f'timezone = "Asia/Shanghai"\n\n[storage]\nurl = "sqlite:///{path}"\n\n[server]\nrole = "{role}"\n\n'
            f'[platforms.wecom]\ncorp_id = "{WECOM_CORP}"\nagent_id = {WECOM_AGENT}\ntoken = "{WECOM_TOKEN}"\n'
            f'encoding_aes_key = "{WECOM_AES_KEY}"\nsecret = "unused"\napi_base = "http://127.0.0.1:9"\n\n'
            f'[log]\nlevel = "WARNING"\n\n[console]\nsecret = "bench-console-secret-0123456789abcdef"\n\n'
            f'[[console.users]]\nlogin = "ops"\nrole = "operator"\npassword_hash = "{hash_password(PASSWORD)}"\n\n'
            + rules)


async def load_entries(config: Path) -> None:
    """The calendar bench's 10 entries, loaded as `siyu calendar load` loads a file."""
    from bot.settings.calendar_context import calendar_context
    from bot.settings.model import load_settings
    from scheduler.calendar_run import load_calendar
    from storage.engine import create_database_engine, session_factory
    from storage.models import utcnow

    settings = load_settings(config)
    engine = create_database_engine(settings.storage.url)
    try:
        _, problems = await load_calendar(session_factory(engine), calendar_preview.CALENDAR, "bench",
                                                calendar_context(settings), utcnow())
        assert not problems, problems
    finally:
        await engine.dispose()


# -- the server and the client --------------------------------------------------------

def serve(config: Path) -> None:
    """The child: the real app on 127.0.0.1 (a free port, printed), until SIGTERM."""
    from aiohttp import web

    from bot.settings.model import load_settings
    from bot.web.app import build_app

    async def run() -> None:
        if os.environ.get("SIYU_BENCH_WATCH_LOOP"):
            watch_loop()
        app = build_app(load_settings(config))
        with contextlib.suppress(ImportError):  # as `siyu serve` does (a base before it did not)
            from bot.web.app import freeze_startup_objects

            app.on_startup.append(freeze_startup_objects)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        print(runner.addresses[0][1], flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(run())


def watch_loop() -> None:
    """Diagnosis (SIYU_BENCH_WATCH_LOOP=1): asyncio's debug mode names each callback that
    holds the loop 50 ms or more, and each garbage collection that long is printed."""
    import gc
    import logging

    logging.basicConfig(level=logging.WARNING)
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 0.05
    started = [0.0]

    def timed(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif (took := time.perf_counter() - started[0]) >= 0.05:
            print(f"gc generation {info['generation']}: {took * 1000:.0f} ms", file=sys.stderr, flush=True)

    gc.callbacks.append(timed)


def pages(facts: dict) -> list[tuple[str, str, str]]:
    """(what, path, the data-testid of the rows counted on it)."""
    common, rare, tail = facts["common_tag"], facts["rare_tag"], facts["phone_tail"]
    return [
        ("overview, 30 days", "/admin/overview", "pyramid-row"),
        ("overview, 90 days", "/admin/overview?days=90", "pyramid-row"),
        ("members, no filter", "/admin/members", "member-row"),
        ("members, q=王 (surname)", "/admin/members?q=王", "member-row"),
        ("members, q=王, page 50", "/admin/members?q=王&page=50", "member-row"),
        (f"members, q={NOBODY} (no match)", f"/admin/members?q={NOBODY}", "member-row"),
        ("members, q=<4-digit phone tail>", f"/admin/members?q={tail}", "member-row"),
        ("members, tag=咖啡 (10 %)", f"/admin/members?tag={common}", "member-row"),
        ("members, tag=咖啡, page 50", f"/admin/members?tag={common}&page=50", "member-row"),
        (f"members, tag={MORE_TAGS[-1][1]} (rarest)", f"/admin/members?tag={rare}", "member-row"),
        ("member, 3,000 interactions", f"/admin/members/{facts['heavy']}", "timeline-row"),
        # The segment builder (issue 16): one WHERE clause over every member, page and count.
        ("segment: store + not opted out", "/admin/members?stores=s01&opted_out=no", "member-row"),
        (f"segment: tags any {MORE_TAGS[0][1]}, none {MORE_TAGS[-1][1]}, active 30 d",
         f"/admin/members?tags_any={MORE_TAGS[0][1]}&tags_none={MORE_TAGS[-1][1]}&active_days=30", "member-row"),
        ("segment: value=super, spend ≥ 500, R ≥ 4", "/admin/members?layer.value=super&spend_min=500&r_min=4",
         "member-row"),
        ("segment count (JSON), store + tags", f"/admin/members/count?stores=s01&tags_all={MORE_TAGS[0][1]}"
         f"&tags_all={MORE_TAGS[1][1]}", "count"),
        ("calendar, this month", "/admin/calendar", "calendar-firing"),
        ("rules", "/admin/rules", "rule-row"),
        ("staff", "/admin/staff", "staff-row"),
        ("tasks, status=all", "/admin/tasks?status=all", "task-row"),
        ("tasks, open", "/admin/tasks", "task-row"),
    ]


def _pad(text: str, width: int) -> str:
    """`text` left-aligned in `width` terminal columns (a Chinese character takes two)."""
    wide = sum(unicodedata.east_asian_width(c) in "WF" for c in text)
    return text + " " * max(0, width - len(text) - wide)


HEADER = f"{_pad('page', 36)}{'first':>8}{'median':>9}{'max':>8}{'CPU':>8}{'RSS':>9}{'rows':>6}{'KB':>7}"


def _proc(pid: int) -> tuple[float, int, int]:
    """The process's CPU seconds, current RSS and peak RSS (kB) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return cpu, int(status["VmRSS"].split()[0]), int(status["VmHWM"].split()[0])


def _reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # the high-water mark back to the current RSS
        return True
    except OSError:
        return False


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[float, str]:
    """One GET: wall seconds until the whole body is read, and the body."""
    started = time.perf_counter()
    async with http.get(url, allow_redirects=False) as response:
        body = await response.text()
    assert response.status == 200, f"GET {url}: {response.status}\n{body[:500]}"
    return time.perf_counter() - started, body


async def measure(base: str, pid: int, facts: dict, runs: int, slow: float = 0.3) -> list[dict]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # cookies for 127.0.0.1
        async with http.get(base + "/admin/login") as response:
            token = re.search(r'name="csrf-token" content="([^"]+)"', await response.text())
        assert token, "no CSRF token on the login page"
        async with http.post(base + "/admin/login", data={"login": "ops", "password": PASSWORD,
                                                          "csrf": token.group(1), "next": ""}) as response:
            assert response.status == 200 and response.url.path != "/admin/login", "login refused"
        _, rss, _ = _proc(pid)
        print(f"server RSS after login: {rss / 1024:.0f} MB; {runs} runs a page: seconds (first, median, max),"
              f" server CPU s/request, peak RSS MB, rows shown, KB\n{HEADER}", flush=True)
        results = []
        for what, path, testid in pages(facts):
            resets = _reset_peak(pid)
            cpu_before = _proc(pid)[0]
            times, body = [], ""
            for _ in range(runs):
                seconds, body = await _get(http, base + path)
                times.append(seconds)
            cpu, _, peak = _proc(pid)
            rows = body.count(f'data-testid="{testid}"')
            result = {"what": what, "path": path, "first": times[0], "median": statistics.median(times),
                      "max": max(times), "cpu": (cpu - cpu_before) / runs, "peak_mb": peak / 1024, "reset": resets,
                      "rows": rows, "kb": len(body.encode()) / 1024}
            results.append(result)
            print(f"{_pad(what, 36)}{result['first']:>8.3f}{result['median']:>9.3f}{result['max']:>8.3f}"
                  f"{result['cpu']:>8.3f}{result['peak_mb']:>9.0f}{rows:>6}{result['kb']:>7.0f}", flush=True)
        # By the worst time, not the median: the calendar caches its month, so its median
        # hides the 4–6 s first view that is exactly what holds other requests up.
        await behind_slow_pages(http, base, pid, [r for r in results if max(r["first"], r["max"]) >= slow])
        return results


QUICK = "/admin/members?q=王"


def signed_callback(n: int) -> tuple[str, str]:
    """The query and body WeCom would POST for a staff member's text message, signed now."""
    from bot.platforms.wecom.crypto import CallbackCrypto, sha1_signature

    timestamp, nonce = str(int(time.time())), str(random.randrange(10**10))
    plain = (f"<xml><ToUserName><![CDATA[{WECOM_CORP}]]></ToUserName><FromUserName><![CDATA[bench{n % 20}]]>"
             f"</FromUserName><CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
             f"<Content><![CDATA[今天的面包几点出炉？第{n}条]]></Content><MsgId>{time.time_ns() + n}</MsgId>"
             f"<AgentID>{WECOM_AGENT}</AgentID></xml>")
    encrypted = CallbackCrypto(WECOM_TOKEN, WECOM_AES_KEY, WECOM_CORP).encrypt(plain.encode())
    query = urlencode({"msg_signature": sha1_signature(WECOM_TOKEN, timestamp, nonce, encrypted),
                       "timestamp": timestamp, "nonce": nonce})
    body = (f"<xml><ToUserName><![CDATA[{WECOM_CORP}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt>"
            f"<AgentID><![CDATA[{WECOM_AGENT}]]></AgentID></xml>")
    return query, body


async def _acknowledged(http: aiohttp.ClientSession, base: str, n: int) -> float:
    """One signed callback: wall seconds until its acknowledgement is read."""
    query, body = signed_callback(n)
    started = time.perf_counter()
    async with http.post(f"{base}/wecom/callback?{query}", data=body.encode()) as response:
        await response.read()
    assert response.status == 200, f"callback refused: {response.status}"
    return time.perf_counter() - started


def _ready_seconds(pid: int) -> float:
    """Seconds the thread `pid` (a process's main thread) has stood ready to run while
    other programs held the CPUs (Linux schedstat; 0 elsewhere)."""
    try:
        return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


class Probes:
    """Small requests sent one after another: each one's wall seconds, and those less the
    time the server's event loop thread and this client's stood ready for a CPU that the
    machine's other programs held (on a shared machine that, not the server, is most of
    the worst case)."""

    def __init__(self, http: aiohttp.ClientSession, base: str, server: int) -> None:
        self.http, self.base, self.server, self.sent = http, base, server, 0

    async def _timed(self, request: Awaitable[float]) -> tuple[float, float]:
        ready = _ready_seconds(self.server) + _ready_seconds(os.getpid())
        wall = await request
        ready = _ready_seconds(self.server) + _ready_seconds(os.getpid()) - ready
        return wall, max(0.0, wall - ready)

    async def quick_page(self) -> tuple[float, float]:
        return await self._timed(self._quick())

    async def _quick(self) -> float:
        return (await _get(self.http, self.base + QUICK))[0]

    async def callback(self) -> tuple[float, float]:
        self.sent += 1
        return await self._timed(_acknowledged(self.http, self.base, self.sent))


def unseen_month(path: str, months_ahead: int) -> str:
    """The calendar's path for a month not viewed yet (its reach is counted afresh)."""
    if not path.startswith("/admin/calendar"):
        return path
    today = datetime.now(ZONE).date()
    n = today.year * 12 + today.month - 1 + months_ahead
    return f"/admin/calendar?month={n // 12}-{n % 12 + 1:02d}"


async def _idle(seconds: float) -> tuple[float, str]:
    await asyncio.sleep(seconds)
    return seconds, ""


async def while_served(http: aiohttp.ClientSession, base: str, path: str | None,
                       probe: Callable[[], Awaitable[tuple[float, float]]]) -> tuple[list[tuple[float, float]], float]:
    """`probe` sent again and again (20 ms apart) while `path` is being served: the
    probes' seconds, and the page's."""
    loading = asyncio.create_task(_get(http, base + path) if path else _idle(3.0))
    await asyncio.sleep(0.05)  # the page's request is in
    times = []
    while not loading.done():
        times.append(await probe())
        await asyncio.sleep(0.02)
    took, _ = await loading
    return times, took


async def behind_slow_pages(http: aiohttp.ClientSession, base: str, server: int, slow: list[dict]) -> list[dict]:
    """A quick page, and a WeCom callback's acknowledgement, while each slow page is being
    served: the worst delay beyond the same request alone (the slow page's own time beside)."""
    if not slow:
        return []
    probes = Probes(http, base, server)
    kinds = (("quick page", probes.quick_page), ("callback ack", probes.callback))
    alone: dict[str, tuple[float, float]] = {}
    for label, probe in kinds:
        await probe()  # a warm connection
        sample = [await probe() for _ in range(7)]
        alone[label] = (statistics.median(t for t, _ in sample), statistics.median(t for _, t in sample))
    print(f"\nalone: GET {QUICK} {alone['quick page'][0] * 1000:.0f} ms, a signed callback acknowledged in "
          f"{alone['callback ack'][0] * 1000:.0f} ms (medians of 7). While a slow page is being served, each is sent"
          f" again and again. The worst delay beyond alone, ms: as timed / less the time the server's loop and this"
          f" client stood ready for a CPU others held; how many were sent; the slow page's own seconds:")
    waits, ahead = [], 1
    # First nothing else for 3 s: what the machine's other load alone makes of the worst probe.
    for result in [{"what": "(nothing else, 3 s)", "path": None}, *slow]:
        line: dict = {"what": result["what"]}
        for label, probe in kinds:
            path = result["path"] and unseen_month(result["path"], ahead)
            ahead += path != result["path"]
            times, took = await while_served(http, base, path, probe)
            line[label] = max((t for t, _ in times), default=alone[label][0]) - alone[label][0]
            line[label + " own"] = max((t for _, t in times), default=alone[label][1]) - alone[label][1]
            line[label + " probes"], line[label + " page"] = len(times), took
        waits.append(line)
        print(f"  {_pad(result['what'], 44)}" + "   ".join(
            f"{label} {line[label] * 1000:>5.0f} / {line[label + ' own'] * 1000:>4.0f} ms"
            f" ({line[label + ' probes']:>3}, {line[label + ' page']:.2f} s)" for label, _ in kinds), flush=True)
    return waits


def server_command(tree: Path | None, config: Path) -> list[str]:
    """The child that serves: this checkout's code, or `tree`'s with its own interpreter."""
    python = tree / ".venv" / "bin" / "python" if tree is not None else None
    return [str(python) if python and python.exists() else sys.executable, __file__, "--serve", str(config)]


def git_head(tree: Path) -> str:
    found = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return found.stdout.strip() or "?"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(Path(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", type=Path, help="default: /tmp/siyu-bench/console-<members>.db")
    parser.add_argument("--slow", type=float, default=0.3, help="pages this slow (s) are probed behind")
    parser.add_argument("--role", choices=("webhook", "all"), default="webhook",
                        help="the server's role; with \"all\" the scheduler, dispatcher and delivery run too")
    parser.add_argument("--tree", type=Path, help="serve this checkout's code (with its .venv), e.g. the base of a"
                                                  " paired comparison; the database is built with this one's")
    args = parser.parse_args()
    path = (args.db or Path(tempfile.gettempdir()) / "siyu-bench" / f"console-{args.members}.db").resolve()
    facts = build(path, args.members)
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "siyu.toml"
        config.write_text(config_text(path, args.role), encoding="utf-8")
        asyncio.run(load_entries(config))
        server = subprocess.Popen(server_command(args.tree, config), stdout=subprocess.PIPE, text=True,
                                  env=os.environ | ({"SIYU_BENCH_TREE": str(args.tree.resolve())} if args.tree else {}))
        try:
            port = int(server.stdout.readline())  # type: ignore[union-attr]
            print(f"\n{args.members:,} members, role {args.role}, code of {(args.tree or ROOT).resolve().name}"
                  f" ({git_head(args.tree or ROOT)}), server pid {server.pid} on port {port}", flush=True)
            results = asyncio.run(measure(f"http://127.0.0.1:{port}", server.pid, facts, args.runs, args.slow))
        finally:
            server.terminate()
            server.wait(60)
    if not all(r["reset"] for r in results):
        print("(the peak RSS could not be reset between pages: each figure is the peak so far)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end")


if __name__ == "__main__":
    main()
