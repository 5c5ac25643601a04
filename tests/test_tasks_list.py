"""Staff tasks listed, and how well each staff member and store gets them done."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.cli.tasks import tasks_list
from bot.settings.model import load_settings
from handlers.task_rates import TaskFact, rates
from storage.engine import SessionFactory
from storage.models import Member, Staff, StaffTask, Store, utcnow
from tests.conftest import write_config

TODAY = date(2026, 11, 24)


def test_rates_count_only_what_is_due_and_on_time_by_the_due_day() -> None:
    facts = [
        TaskFact(date(2026, 11, 20), "done", date(2026, 11, 20)),  # on time
        TaskFact(date(2026, 11, 20), "done", date(2026, 11, 22)),  # late
        TaskFact(date(2026, 11, 21), "skipped", date(2026, 11, 21)),
        TaskFact(date(2026, 11, 22), "open", None),  # overdue
        TaskFact(TODAY, "open", None),  # due today: not overdue yet
        TaskFact(date(2026, 11, 30), "done", date(2026, 11, 23)),  # not due yet: not counted
    ]
    found = rates(facts, TODAY)
    assert (found.due, found.done, found.on_time, found.skipped, found.overdue) == (5, 2, 1, 1, 1)
    assert found.completion == pytest.approx(2 / 5) and found.on_time_rate == pytest.approx(1 / 5)
    assert rates([], TODAY).completion is None


async def test_tasks_list_filters_by_staff_and_status_and_rates_each(
    db_url: str, tmp_path: Path, sessions: SessionFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    today = utcnow().astimezone(load_settings(write_config(tmp_path, db_url)).zone).date()
    async with sessions() as session, session.begin():
        store = Store(code="jingan", name="静安店")
        session.add(store)
        await session.flush()
        zhang, li = Staff(userid="zhangsan", name="张三", store_id=store.id), Staff(userid="lisi", name="李四")
        fang = Member(name="王芳")
        session.add_all([zhang, li, fang])
        await session.flush()
        yesterday_end = datetime.combine(today - timedelta(days=1), datetime.min.time(), timezone.utc)
        session.add_all([
            StaffTask(dedupe_key="a", staff_id=zhang.id, member_id=fang.id, kind="birthday_gift", title="王芳的生日",
                      due_date=today - timedelta(days=1), status="done", done_at=yesterday_end),
            StaffTask(dedupe_key="b", staff_id=zhang.id, kind="handoff_reply", title="人工回复",
                      due_date=today - timedelta(days=2)),
            StaffTask(dedupe_key="c", staff_id=li.id, kind="moments_post", title="发朋友圈", due_date=today + timedelta(days=3)),
        ])
    settings = load_settings(write_config(tmp_path, db_url))

    assert await tasks_list(settings, None, "overdue", True) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(t["title"], t["status"], t["staff"], t["store"]) for t in report["tasks"]] == [
        ("人工回复", "overdue", "zhangsan", "静安店")]
    zhang_rates = report["staff"]["zhangsan"]
    assert (zhang_rates["due"], zhang_rates["done"], zhang_rates["overdue"], zhang_rates["completion"]) == (2, 1, 1, 0.5)
    assert report["staff"]["lisi"]["due"] == 0 and report["stores"]["静安店"]["on_time"] == 1

    assert await tasks_list(settings, "lisi", None, True) == 0
    only_li = json.loads(capsys.readouterr().out)
    assert [t["title"] for t in only_li["tasks"]] == ["发朋友圈"] and list(only_li["staff"]) == ["lisi"]
    assert await tasks_list(settings, None, None, False) == 0
    assert "per staff member" in capsys.readouterr().out
