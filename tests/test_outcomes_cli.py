"""The commands: `siyu ltv fit` and `siyu ltv show`, `siyu outcomes report` — on a real
database, with scores that read right, the at-risk task once, and bad input refused."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from bot.cli.main import main
from storage.engine import sync_url
from storage.models import LayerAssignment, Member, Order, Staff, StaffTask
from storage.outcome_models import LtvScore, OutcomeTouch
from tests.conftest import write_config

AS_OF = date(2026, 11, 1)
START = datetime(2025, 11, 1, 4, 0, tzinfo=timezone.utc)


def seed(url: str) -> dict[str, int]:
    """80 regulars buying every 1-4 weeks, half of whom stop at some point in the year;
    常客 bought weekly but stopped five months ago (top layer: she should be flagged);
    新客 bought once."""
    rng = random.Random(7)
    engine = create_engine(sync_url(url))
    ids: dict[str, int] = {}
    with engine.begin() as c:
        owner = c.execute(Staff.__table__.insert().values(userid="zhangsan", name="张三")).inserted_primary_key[0]  # type: ignore[attr-defined]

        def member(name: str) -> int:
            ids[name] = c.execute(Member.__table__.insert().values(  # type: ignore[attr-defined]
                name=name, owner_staff_id=owner, member_since=date(2025, 1, 1))).inserted_primary_key[0]
            return ids[name]

        orders = []
        for n in range(80):
            her, day = member(f"m{n}"), rng.uniform(0, 60)
            stop = 365 if n % 2 == 0 else rng.uniform(90, 330)
            while day < stop:
                orders.append({"member_id": her, "ordered_at": START + timedelta(days=day),
                               "amount_cents": rng.randint(2000, 12000)})
                day += rng.uniform(7, 28) * (1 + n % 3)
        her = member("常客")
        orders += [{"member_id": her, "ordered_at": START + timedelta(days=7 * w), "amount_cents": 8800}
                   for w in range(30)]
        orders.append({"member_id": member("新客"), "ordered_at": START + timedelta(days=300), "amount_cents": 3800})
        c.execute(Order.__table__.insert(), [o | {"order_no": f"o{i}"} for i, o in enumerate(orders)])  # type: ignore[attr-defined]
        c.execute(LayerAssignment.__table__.insert().values(member_id=ids["常客"], scheme="value", layer="super", metrics="{}"))  # type: ignore[attr-defined]
    engine.dispose()
    return ids


def test_ltv_fit_scores_members_and_flags_a_fading_top_member_once(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed(db_url)
    config = str(write_config(tmp_path, db_url))
    assert main(["ltv", "fit", "--as-of", AS_OF.isoformat(), "--json", "--config", config]) == 0
    fitted = json.loads(capsys.readouterr().out)
    assert fitted["customers"] == 82 and fitted["scored"] == 82 and fitted["params"]["unit"] == "week"
    assert set(fitted["params"]["bgnbd"]) >= {"r", "alpha", "a", "b"} and fitted["params"]["gamma_gamma"]["p"] > 0
    assert fitted["at_risk_tasks"] == 1
    assert main(["ltv", "show", str(ids["常客"]), "--json", "--config", config]) == 0
    fading = json.loads(capsys.readouterr().out)["ltv"]
    assert main(["ltv", "show", str(ids["m0"]), "--json", "--config", config]) == 0
    regular = json.loads(capsys.readouterr().out)["ltv"]
    assert fading["p_alive"] < 0.3 < regular["p_alive"]
    assert regular["orders_90d"] > 0 and regular["clv_90d_yuan"] > 0
    # A refit the next day: she is still under the line, no second task.
    assert main(["ltv", "fit", "--as-of", "2026-11-02", "--json", "--config", config]) == 0
    assert json.loads(capsys.readouterr().out)["at_risk_tasks"] == 0
    engine = create_engine(sync_url(db_url))
    with engine.connect() as c:
        tasks = c.execute(select(StaffTask.kind, StaffTask.member_id, StaffTask.title)).all()
        scored = c.execute(select(LtvScore.member_id)).scalars().all()
    engine.dispose()
    assert [(k, m) for k, m, _ in tasks] == [("ltv_at_risk", ids["常客"])] and "常客" in tasks[0][2]
    assert len(scored) == 82
    assert main(["ltv", "show", "nobody", "--config", config]) == 1
    assert "no member 'nobody'" in capsys.readouterr().err


def test_ltv_fit_without_repeat_buyers_says_so(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(write_config(tmp_path, db_url))
    assert main(["ltv", "fit", "--config", config]) == 1
    assert "nothing to fit yet" in capsys.readouterr().err


def test_outcomes_report_shows_reached_against_held_out(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed(db_url)
    at = datetime(2026, 10, 20, 2, 0, tzinfo=timezone.utc)
    engine = create_engine(sync_url(db_url))
    with engine.begin() as c:
        c.execute(OutcomeTouch.__table__.insert(), [  # type: ignore[attr-defined]
            {"member_id": ids[f"m{n}"], "at": at, "source_kind": "occasion", "source_ref": "birthday",
             "held_out": n >= 40, "ref": f"t{n}"} for n in range(80)])
    engine.dispose()
    config = str(write_config(tmp_path, db_url))
    assert main(["outcomes", "report", "--from", "2026-10-01", "--to", "2026-10-31", "--by", "occasion", "--json",
                 "--config", config]) == 0
    found = json.loads(capsys.readouterr().out)
    [row] = found["rows"]
    assert row["label"] == "生日" and row["reached"]["members"] == 40 and row["held_out"]["members"] == 40
    assert found["attribution"] == "last" and found["windows_days"]["occasion"] == 7
    assert row["enough"] is False or row["rate_interval"] is not None
    assert main(["outcomes", "report", "--by", "layer", "--config", config]) == 0  # the table prints
    assert main(["outcomes", "report", "--from", "2026-10-31", "--to", "2026-10-01", "--config", config]) == 1
    assert "before it starts" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["outcomes", "report", "--by", "weather", "--config", config])


def test_the_weekly_digest_reads_as_a_short_note() -> None:
    from bot.shared.outcomes_digest import digest_text
    from bot.shared.outcomes_report import GroupRow, OutcomeRow, OutcomesReport

    def row(label: str, enough: bool) -> OutcomeRow:
        group = GroupRow(200, 60, 0.3, 4080.0, 20.4)
        return OutcomeRow(label, label, group, GroupRow(100, 10, 0.1, 680.0, 6.8), 55, 3740.0, enough,
                          0.2 if enough else None, (0.11, 0.28) if enough else None, None, None, "")

    text = digest_text(OutcomesReport("source", date(2026, 11, 23), date(2026, 11, 29), "last",
                                      {"entry": 7}, [row("关怀：生日", True), row("日历：新品", False)]),
                       "https://ops.example.com/admin/outcomes")
    assert text.splitlines()[0].startswith("成效周报 11-23 至 11-29")
    assert "关怀：生日：触达 200 人，转化 30.0%，对照 10.0%，提升 20.0% [+11.0%, +28.0%]" in text
    assert "日历：新品：触达 200 人，转化 30.0%，对照组数据不足" in text
    assert text.endswith("详情：https://ops.example.com/admin/outcomes")
