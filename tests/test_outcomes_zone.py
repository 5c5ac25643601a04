"""The brand's day, not UTC's: at 01:00 in Shanghai UTC is still on the day before, so
the outcomes digest's week, the report's default range and the LTV fit's "as of" day
must be read in the configured time zone (Asia/Shanghai in the tests' config)."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, select

from bot.cli.main import main
from bot.settings.model import load_settings
from bot.shared.outcomes_digest import send_outcomes_digest
from bot.shared.outcomes_report import last_days
from storage.engine import SessionFactory, sync_url
from storage.models import Member, Order, OutboxEntry
from storage.outcomes import TouchSource, record_touch
from tests.conftest import write_config
from tests.test_outcomes import members
from tests.test_outcomes_cli import seed

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Tuesday 1 December, 01:00 in Shanghai; still Monday 30 November in UTC.
NOW = datetime(2026, 11, 30, 17, 0, tzinfo=timezone.utc)


def test_the_default_range_ends_on_the_brands_yesterday() -> None:
    assert last_days(NOW, SHANGHAI) == (date(2026, 11, 1), date(2026, 11, 30))
    assert last_days(NOW, ZoneInfo("UTC"), 7) == (date(2026, 11, 23), date(2026, 11, 29))  # what UTC would say


async def test_the_digest_covers_the_brands_last_seven_days(
    db_url: str, tmp_path: Path, sessions: SessionFactory
) -> None:
    settings = load_settings(write_config(tmp_path, db_url, '\n[outcomes]\ndigest_to = ["zhangsan"]\n'))
    ids = await members(sessions, 5)
    moments = [
        datetime(2026, 11, 23, 15, 30, tzinfo=timezone.utc),  # 23 Nov 23:30 local: the week before
        datetime(2026, 11, 23, 16, 30, tzinfo=timezone.utc),  # 24 Nov 00:30 local: in
        datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc),  # 30 Nov 20:00 local: in
        datetime(2026, 11, 30, 15, 0, tzinfo=timezone.utc),  # 30 Nov 23:00 local: in
        datetime(2026, 11, 30, 16, 30, tzinfo=timezone.utc),  # 1 Dec 00:30 local: today, not yet
    ]
    async with sessions() as session, session.begin():
        for n, (member_id, at) in enumerate(zip(ids, moments)):
            await record_touch(session, member_id, at, TouchSource("occasion", "birthday"), f"outbox:{n}")
    assert await send_outcomes_digest(sessions, settings, "wecom", NOW) == 1
    async with sessions() as session:
        (row,) = (await session.execute(select(OutboxEntry))).scalars().all()
    assert row.dedupe_key == "outcomes-digest:20261130:zhangsan"
    assert row.body.startswith("成效周报 11-24 至 11-30")
    assert "关怀：生日：触达 3 人" in row.body  # UTC days would have counted 2 (23 Nov 23:30 and 24 Nov 00:30)


def test_an_ltv_fit_as_of_a_day_leaves_out_orders_of_that_local_day(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(db_url)
    engine = create_engine(sync_url(db_url))
    with engine.begin() as c:
        her = c.execute(Member.__table__.insert().values(name="夜猫")).inserted_primary_key[0]  # type: ignore[attr-defined]
        c.execute(Order.__table__.insert(), [  # type: ignore[attr-defined]
            {"order_no": "n1", "member_id": her, "amount_cents": 5000,
             "ordered_at": datetime(2026, 9, 1, 4, 0, tzinfo=timezone.utc)},
            # 1 November 00:30 in Shanghai (31 October in UTC): on the as-of day, so not before it.
            {"order_no": "n2", "member_id": her, "amount_cents": 5000,
             "ordered_at": datetime(2026, 10, 31, 16, 30, tzinfo=timezone.utc)},
        ])
    engine.dispose()
    config = str(write_config(tmp_path, db_url))
    assert main(["ltv", "fit", "--as-of", "2026-11-01", "--json", "--config", config]) == 0
    capsys.readouterr()
    assert main(["ltv", "show", str(her), "--json", "--config", config]) == 0
    value = json.loads(capsys.readouterr().out)["ltv"]
    assert value["as_of"] == "2026-11-01"
    assert value["p_alive"] == 1.0  # one order before the day: no repeat yet, so nothing says she left
    # The next local day takes the order in: now she has a repeat purchase.
    assert main(["ltv", "fit", "--as-of", "2026-11-02", "--json", "--config", config]) == 0
    capsys.readouterr()
    assert main(["ltv", "show", str(her), "--json", "--config", config]) == 0
    assert json.loads(capsys.readouterr().out)["ltv"]["p_alive"] < 1.0
