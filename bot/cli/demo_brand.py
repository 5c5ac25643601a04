"""`siyu demo`: a bakery brand with a persona, stores, staff, members and orders.

The data is generated from a fixed seed, so every demo looks the same apart from the
birthdays placed on the day it is first run.
"""

from __future__ import annotations

import os
import random
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from lunardate import LunarDate
from sqlalchemy import func, select

from bot.console.passwords import hash_password
from bot.settings.calendar_context import calendar_context
from bot.settings.care_plan import care_plan
from bot.settings.model import Settings
from bot.settings.templates import renderer_for
from bot.shared.outcomes_digest import daily_ltv_fit
from scheduler.calendar_run import load_calendar
from scheduler.care import run_care_scan
from scheduler.engagement import snapshot_engagement
from scheduler.holdout import held_out
from scheduler.layer_jobs import recompute_layers
from storage.engine import SessionFactory, create_database_engine, session_factory
from storage.models import Interaction, Member, MemberIdentity, Order, Staff, Store, utcnow
from storage.outcome_models import OutcomeTouch

DEMO_PASSWORD = "siyu-demo"  # the demo's console logins; a real brand hashes its own
CHAT_DAYS = 14
CHAT_LINES = ("今天有全麦吐司吗", "蛋糕可以预订吗", "几点关门呀", "上次的可颂很好吃", "有少糖的面包吗", "周末有活动吗")
MEMBERS = 500
ORDERS = 5000
SOLAR_BIRTHDAYS_TODAY = 4
LUNAR_BIRTHDAYS_TODAY = 2
LUNAR_SHARE = 0.15

CONFIG = """\
# The demo brand. Every key is explained in config.example.toml.
timezone = "Asia/Shanghai"

[storage]
url = "sqlite:///siyu.db"    # next to this file

[server]
host = "127.0.0.1"
port = {port}

[platforms.sandbox]
enabled = true

# The operator console at /admin/. Every demo login's password is "{password}".
[console]
secret = "{secret}"
public_url = "http://127.0.0.1:{port}"

[[console.users]]
login = "ops"
role = "operator"
password_hash = "{password_hash}"

[[console.users]]
login = "chenjing"        # 静安店's manager: her store's tasks and members
role = "staff"
staff = "chenjing"
password_hash = "{password_hash}"

[[console.users]]
login = "liuyang"         # a staff member of 静安店: his own
role = "staff"
staff = "liuyang"
password_hash = "{password_hash}"

[persona]
name = "小禾"
title = "禾麦烘焙的主理人，做了十年面包"
signature = "小禾 · 禾麦烘焙"
default_line = "今天店里的全麦吐司刚出炉，想聊烘焙、口味或者门店的事都可以找我。"

[persona.tips]
"面包控" = "刚出炉的欧包放凉十分钟再切，气孔最漂亮"
"蛋糕控" = "动物奶油蛋糕从冷藏拿出来回温五分钟，口感最顺滑"
"控糖" = "我们的全麦和黑麦系列都是低糖配方，配料表在每个标签上"

[[tags.rules]]
id = "interest-bread"
tag = "面包控"
group = "口味偏好"
keywords = ["面包", "吐司", "欧包", "可颂", "贝果"]

[[tags.rules]]
id = "interest-cake"
tag = "蛋糕控"
group = "口味偏好"
keywords = ["蛋糕", "慕斯", "芝士", "提拉米苏"]

[[tags.rules]]
id = "diet-low-sugar"
tag = "控糖"
group = "饮食需求"
keywords = ["少糖", "无糖", "控糖", "减脂"]

[[tags.rules]]
id = "occasion-birthday-cake"
kind = "regex"
tag = "生日蛋糕意向"
group = "场景"
pattern = '(生日|纪念日).{{0,6}}蛋糕'
weight = 5
topic = "定制蛋糕"

[[tags.rules]]
id = "intent-now"
tag = "A级意向"
group = "意向等级"
keywords = ["今天要", "马上要", "现在下单", "帮我留"]

[[tags.rules]]
id = "intent-browsing"
tag = "C级意向"
group = "意向等级"
keywords = ["随便看看", "先看看", "了解一下"]

[[tags.rules]]
id = "chatty"
kind = "behaviour"
measure = "messages"
count = 5
days = 7
tag = "高互动"
group = "活跃度"

[[tags.rules]]
id = "asleep"
kind = "behaviour"
measure = "silent"
days = 60
tag = "沉睡"
group = "活跃度"

[[tags.rules]]
id = "unsubscribed"
kind = "event"
event = "opted_out"
tag = "已退订"

[[tags.groups]]
name = "意向等级"
exclusive = true       # a new grade replaces the old
expire_days = 30       # and lapses after 30 days without a new hit

[[tags.groups]]
name = "活跃度"
exclusive = true

[templates]
dir = "templates"      # the FAQ answers below live here

[replies]
max_replies = 3
per_minutes = 10

[replies.office_hours]
start = "08:00"
end = "21:00"

[[replies.faq]]
id = "opening-hours"
keywords = ["几点开门", "几点关门", "营业时间"]
template = "faq/opening_hours.txt.j2"

[[replies.faq]]
id = "delivery"
keywords = ["外送", "配送", "送货"]
template = "faq/delivery.txt.j2"

[handoff]
default_staff = "chenjing"   # new sandbox members have no owner and no store yet
"""

# The operator's content calendar. The demo has only the sandbox, where no one may send
# marketing to members, so its entries ask staff to post (Moments, customer groups).
CALENDAR = """\
[[entries]]
id = "friday-moments"
title = "周五朋友圈：周末新品"
cron = "0 10 * * fri"
channel = "staff_task"
template = "calendar/moments_post.txt.j2"
audience = { everyone = true }

[[entries]]
id = "jingan-class"
title = "静安店客户群：烘焙小课堂"
cron = "0 15 * * tue"
channel = "staff_task"
template = "calendar/new_season.txt.j2"
audience = { stores = ["jingan"] }
"""

FAQ_TEMPLATES = {
    "faq/opening_hours.txt.j2": "{{ member.name or '你' }}，两家店都是每天 8:00 开门、21:00 关门，"
    "晚上 8 点后面包打八折哦。— {{ persona.name }}\n",
    "faq/delivery.txt.j2": "三公里内满 68 元免费配送，下单后一小时左右送到。"
    "{% if store %}离你最近的是{{ store.name }}。{% endif %}— {{ persona.name }}\n",
}

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = "芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红梅琳雪婷晨宇欣怡佳悦子涵浩然雨"


@dataclass(frozen=True)
class DemoResult:
    created: bool
    members: int
    orders: int
    example_member: str  # a seeded member's sandbox name, for the hints printed


def write_config(directory: Path, port: int) -> Path:
    """Write DIR/siyu.toml unless it is there already (an operator may have edited it)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "siyu.toml"
    if not path.exists():
        text = CONFIG.format(port=port, password=DEMO_PASSWORD, password_hash=hash_password(DEMO_PASSWORD),
                             secret=secrets.token_urlsafe(32))
        # It holds the console secret (which signs sessions and task links): owner only.
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as file:
            file.write(text)
    elif os.name == "posix":
        path.chmod(path.stat().st_mode & 0o700)  # a demo folder from before: narrow it
    for name, text in FAQ_TEMPLATES.items():
        template = directory / "templates" / name
        if not template.exists():
            template.parent.mkdir(parents=True, exist_ok=True)
            template.write_text(text, encoding="utf-8")
    return path


README_MEMBER = "王芳"  # the README's 「查 王芳」: the first member, 陈静's (静安店's manager)


def _names(rng: random.Random, count: int) -> list[str]:
    names: list[str] = [README_MEMBER]
    seen: set[str] = {README_MEMBER}
    while len(names) < count:
        name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


@dataclass(frozen=True)
class Birthday:
    year: int
    month: int
    day: int
    calendar: str = "solar"
    leap_month: bool = False


def _birthday(rng: random.Random, index: int, today: date) -> Birthday:
    """A birthday in the member's own calendar: some fall today, some are lunar."""
    year = rng.randint(1965, 2004)
    if index < SOLAR_BIRTHDAYS_TODAY:
        return Birthday(year, today.month, today.day)
    if index < SOLAR_BIRTHDAYS_TODAY + LUNAR_BIRTHDAYS_TODAY:
        lunar = LunarDate.from_solar_date(today.year, today.month, today.day)
        return Birthday(year, lunar.month, lunar.day, "lunar", lunar.is_leap_month)
    if rng.random() < LUNAR_SHARE:
        return Birthday(year, rng.randint(1, 12), rng.randint(1, 30), "lunar")
    solar = date(2001, 1, 1) + timedelta(days=rng.randrange(365))
    return Birthday(year, solar.month, solar.day)


async def seed(sessions: SessionFactory, today: date) -> DemoResult:
    """Fill an empty database with the demo brand; leave a filled one alone."""
    async with sessions() as session, session.begin():
        existing = (await session.execute(select(func.count()).select_from(Member))).scalar_one()
        if existing:
            orders = (await session.execute(select(func.count()).select_from(Order))).scalar_one()
            first = (await session.execute(select(Member.name).order_by(Member.id).limit(1))).scalar_one()
            return DemoResult(False, existing, orders, first or "")
        rng = random.Random(20261123)
        stores = [Store(code="jingan", name="静安店", city="上海"), Store(code="xuhui", name="徐汇店", city="上海")]
        session.add_all(stores)
        await session.flush()
        staff = [
            Staff(userid="chenjing", name="陈静", store_id=stores[0].id, role="manager"),
            Staff(userid="liuyang", name="刘洋", store_id=stores[0].id),
            Staff(userid="zhaomin", name="赵敏", store_id=stores[1].id, role="manager"),
            Staff(userid="sunhao", name="孙浩", store_id=stores[1].id),
        ]
        session.add_all(staff)
        await session.flush()
        members = []
        for index, name in enumerate(_names(rng, MEMBERS)):
            birthday = _birthday(rng, index, today)
            owner = staff[index % len(staff)]
            members.append(
                Member(
                    name=name,
                    phone=f"1{rng.choice('3589')}{rng.randrange(10**9):09d}",
                    birth_year=birthday.year,
                    birth_month=birthday.month,
                    birth_day=birthday.day,
                    birthday_calendar=birthday.calendar,
                    birthday_leap_month=birthday.leap_month,
                    birth_md=birthday.month * 100 + birthday.day,
                    member_since=today - timedelta(days=rng.randrange(30, 3 * 365)),
                    paid_member=rng.random() < 0.08,
                    store_id=owner.store_id,
                    owner_staff_id=owner.id,
                )
            )
            # On the books since she joined, so the engagement history has her from then.
            since = members[-1].member_since
            assert since is not None
            members[-1].created_at = datetime.combine(since, datetime.min.time(), tzinfo=timezone.utc)
        session.add_all(members)
        await session.flush()
        session.add_all(
            MemberIdentity(member_id=m.id, platform="sandbox", external_id=m.name)  # type: ignore[arg-type]
            for m in members
        )
        # A few members buy most of it (Pareto): weight members by a heavy-tailed draw.
        weights = [rng.paretovariate(1.2) for _ in members]
        start = datetime.combine(today, datetime.min.time(), tzinfo=timezone.utc) - timedelta(days=730)
        buyers = rng.choices(members, weights=weights, k=ORDERS)
        session.add_all(
            Order(
                order_no=f"DEMO{number:06d}",
                member_id=buyer.id,  # type: ignore[arg-type]
                store_id=buyer.store_id,
                amount_cents=rng.choice((1800, 2800, 3600, 6800, 12800, 19800, 36800)),
                ordered_at=start + timedelta(minutes=rng.randrange(730 * 24 * 60)),
            )
            for number, buyer in enumerate(buyers, start=1)
        )
        session.add_all(_recent_chats(rng, members, today))
        touches, extra = _care_history(rng, members, today)
        session.add_all(touches)
        session.add_all(extra)
    return DemoResult(True, MEMBERS, ORDERS + len(extra), members[0].name or "")


# Four weeks of care (the 成效 page's default range is the last 30 days), with a true effect the 成效 page can find: of the members a care
# message reached, this share bought within the week after; of those held out, less.
CARE_WEEKS = 4
BUY_AFTER_CARE = 0.30
BUY_WHEN_HELD_OUT = 0.15
HOLDOUT = 0.2


def _care_history(rng: random.Random, members: list[Member], today: date) -> tuple[list[OutcomeTouch], list[Order]]:
    """Birthday and win-back care over the last four weeks: each occasion held out of 20 %
    of its audience (drawn as the live scan draws), and the orders that followed — more
    often after a message than without one."""
    touches: list[OutcomeTouch] = []
    orders: list[Order] = []
    start = datetime.combine(today, datetime.min.time(), tzinfo=timezone.utc) - timedelta(days=7 * CARE_WEEKS)
    for member in members:
        assert member.id is not None
        for occasion, share in (("birthday", 0.5), ("winback", 0.45)):
            if rng.random() > share:
                continue
            at = start + timedelta(days=rng.randrange(1, 7 * CARE_WEEKS - 6), hours=2)
            held = held_out(member.id, f"occasion:{occasion}", at.year, HOLDOUT)
            touches.append(OutcomeTouch(member_id=member.id, at=at, source_kind="occasion", source_ref=occasion,
                                        staff_id=member.owner_staff_id, store_id=member.store_id, held_out=held,
                                        ref=f"demo:{occasion}:{member.id}"))
            if rng.random() < (BUY_WHEN_HELD_OUT if held else BUY_AFTER_CARE):
                orders.append(Order(order_no=f"DEMO-C{len(orders) + 1:05d}", member_id=member.id,
                                    store_id=member.store_id, amount_cents=rng.choice((3600, 6800, 12800, 19800)),
                                    ordered_at=at + timedelta(days=rng.uniform(0.2, 6.5))))
    return touches, orders


def _recent_chats(rng: random.Random, members: list[Member], today: date) -> list[Interaction]:
    """Two weeks of conversations: some members write most days, most now and then, and
    each message gets the persona's reply a little later."""
    chats: list[Interaction] = []
    start = datetime.combine(today, datetime.min.time(), tzinfo=timezone.utc) - timedelta(days=CHAT_DAYS)
    for member in members:
        chatty = rng.random() < 0.1
        for day in range(CHAT_DAYS):
            if rng.random() > (0.5 if chatty else 0.04):
                continue
            said = start + timedelta(days=day, minutes=rng.randrange(1 * 60, 13 * 60))  # 09:00–21:00 local
            assert member.id is not None
            chats.append(Interaction(member_id=member.id, kind="message_in", platform="sandbox", at=said,
                                     text=rng.choice(CHAT_LINES)))
            chats.append(Interaction(member_id=member.id, kind="message_out", platform="sandbox",
                                     at=said + timedelta(seconds=rng.randrange(2, 40)), text="（小禾的回复）"))
    return chats


async def prepare_demo(settings: Settings) -> DemoResult:
    """Seed the brand (once), then compute what a brand that has run a while would have:
    layers, two weeks of engagement, and today's care (greetings and gift tasks)."""
    engine = create_database_engine(settings.storage.url)
    try:
        sessions = session_factory(engine)
        result = await seed(sessions, datetime.now(settings.zone).date())  # the brand's day, as care counts it
        if result.created:
            _, problems = await load_calendar(sessions, CALENDAR, "demo calendar", calendar_context(settings), utcnow())
            assert not problems, problems
        schemes = [s.scheme() for s in settings.layers.schemes]
        now = utcnow()
        await recompute_layers(sessions, schemes, settings.layers.rfm.spec(), renderer_for(settings), settings.zone, now)
        today = now.astimezone(settings.zone).date()
        days = [today - timedelta(days=n) for n in range(13, -1, -1)]
        await snapshot_engagement(sessions, [s.name for s in schemes], days, settings.zone, now)
        await run_care_scan(sessions, care_plan(settings), renderer_for(settings), settings.zone, now)
        if result.created:
            await daily_ltv_fit(sessions, settings, now)  # P(alive) and expected value on member pages
        return result
    finally:
        await engine.dispose()
