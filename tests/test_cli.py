"""The read-only commands and the demo seed, through `siyu`'s own entry point."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from lunardate import LunarDate
from sqlalchemy import func, select

from bot.cli.demo_brand import seed
from bot.cli.main import main
from storage.engine import create_database_engine, session_factory
from storage.members import resolve_member
from storage.migrate import upgrade
from storage.models import Member, Order, Staff, Store, utcnow
from storage.outbox import NewOutboxMessage, enqueue
from storage.tags import add_interest, apply_tag, ensure_tag
from tests.conftest import write_config

TODAY = date(2026, 11, 23)


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


async def with_sessions(url: str, work):  # type: ignore[no-untyped-def]
    engine = create_database_engine(url)
    try:
        return await work(session_factory(engine))
    finally:
        await engine.dispose()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    url = f"sqlite:///{tmp_path / 'siyu.db'}"
    upgrade(url)
    return write_config(tmp_path, url)


def test_member_show_json_gives_profile_tags_and_interactions(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def prepare(sessions):  # type: ignore[no-untyped-def]
        async with sessions() as session, session.begin():
            member = await resolve_member(session, "sandbox", "王芳", "王芳", utcnow())
            member.phone, member.unionid = "13812345678", "union-9"
            tag = await ensure_tag(session, "面包控", "口味偏好")
            await apply_tag(session, member.id, tag, "rule", "interest-bread", utcnow())
            await add_interest(session, member.id, "烘焙", 3, utcnow())
            return member.id

    member_id = run(with_sessions("sqlite:///" + str(config.parent / "siyu.db"), prepare))
    for reference in (str(member_id), "王芳", "union-9"):
        assert main(["member", "show", reference, "--json", "--config", str(config)]) == 0
        card = json.loads(capsys.readouterr().out)
        assert card["id"] == member_id and card["name"] == "王芳"
    assert card["phone"] == "138****5678"  # never the full number
    assert card["identities"] == [{"platform": "sandbox", "id": "王芳"}]
    assert [(t["name"], t["source"], t["source_ref"], t["hit_count"]) for t in card["tags"]] == [
        ("面包控", "rule", "interest-bread", 1)
    ]
    assert card["interactions"] == 0 and card["interests"] == {"烘焙": 3}


def test_member_show_of_nobody_exits_1(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["member", "show", "nobody", "--config", str(config)]) == 1
    assert "no member 'nobody'" in capsys.readouterr().err


def test_outbox_list_json_filters_by_status(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def prepare(sessions):  # type: ignore[no-untyped-def]
        async with sessions() as session, session.begin():
            await enqueue(session, [
                NewOutboxMessage("a", "sandbox", "王芳", "service", "你好"),
                NewOutboxMessage("b", "sandbox", "李娜", "marketing", "新品"),
            ], utcnow())

    run(with_sessions("sqlite:///" + str(config.parent / "siyu.db"), prepare))
    assert main(["outbox", "list", "--json", "--config", str(config)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["dedupe_key"] for r in rows) == ["a", "b"] and {r["status"] for r in rows} == {"pending"}
    assert main(["outbox", "list", "--status", "sent", "--json", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["outbox", "list", "--config", str(config)]) == 0
    assert "新品" in capsys.readouterr().out


def test_commands_with_a_broken_config_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "siyu.toml"
    path.write_text("[server]\nport = 0\n")
    assert main(["outbox", "list", "--config", str(path)]) == 1
    assert f"{path}: server.port:" in capsys.readouterr().err


def test_the_demo_seed_is_a_brand_with_birthdays_today_and_is_reused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    upgrade(url)

    async def seed_twice_and_count(sessions):  # type: ignore[no-untyped-def]
        first = await seed(sessions, TODAY)
        second = await seed(sessions, TODAY)
        async with sessions() as session:
            counts = {
                model.__name__: (await session.execute(select(func.count()).select_from(model))).scalar_one()
                for model in (Store, Staff, Member, Order)
            }
            members = (await session.execute(select(Member))).scalars().all()
        return first, second, counts, members

    first, second, counts, members = run(with_sessions(url, seed_twice_and_count))
    assert first.created and not second.created
    orders = counts.pop("Order")
    assert counts == {"Store": 2, "Staff": 4, "Member": 500} and 5000 < orders == first.orders == second.orders
    lunar_today = LunarDate.from_solar_date(TODAY.year, TODAY.month, TODAY.day)
    solar_today = [m for m in members if m.birthday_calendar == "solar" and (m.birth_month, m.birth_day) == (11, 23)]
    lunar_today_members = [
        m for m in members
        if m.birthday_calendar == "lunar" and (m.birth_month, m.birth_day) == (lunar_today.month, lunar_today.day)
    ]
    assert len(solar_today) >= 4 and len(lunar_today_members) >= 2
    assert sum(m.birthday_calendar == "lunar" for m in members) > 40
    assert len({m.birth_month for m in members}) == 12  # spread over the year
    assert all(m.owner_staff_id and m.store_id for m in members)
    # The README's 「查 王芳」 finds her: one 王芳, owned by 静安店's manager 陈静, whom the staff panel plays.
    [wangfang] = [m for m in members if m.name == "王芳"]
    assert first.example_member == "王芳"
    assert wangfang.owner_staff_id == min(m.owner_staff_id for m in members)  # the first staff member: 陈静


def test_db_upgrade_migrates_a_new_database_and_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from storage.migrate import pending_revisions

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    config = write_config(tmp_path, url)
    assert pending_revisions(url) != []
    assert main(["db", "upgrade", "--config", str(config)]) == 0
    assert main(["db", "upgrade", "--config", str(config)]) == 0
    assert pending_revisions(url) == []
    assert "database is up to date (sqlite)" in capsys.readouterr().out


def test_serve_on_a_port_in_use_says_so_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(tmp_path, f"sqlite:///{tmp_path / 'siyu.db'}", f"[server]\nport = {port}\n")
        assert main(["serve", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "[server] port" in err


def test_an_operators_day_through_the_command_line(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """import → layers → care → calendar → tasks, each through `siyu …` as typed."""
    folder = config.parent
    (folder / "members.csv").write_text(
        "会员号,姓名,手机,生日,入会日期\nM1,王芳,13812345678,1990-08-15,2024-03-01\nM2,李娜,13900001111,农历1992-01-15,2025-01-01\n",
        encoding="utf-8")
    (folder / "orders.csv").write_text(
        "订单号,会员号,实付金额,下单时间\nA-1,M1,38.50,2026-11-01 10:00\nA-2,M1,-1,2026-11-02 10:00\nA-3,M9,20,2026-11-02 10:00\n",
        encoding="utf-8")
    (folder / "calendar.toml").write_text(
        '[[entries]]\nid = "new-season"\ncron = "0 10 * * fri"\nchannel = "oa"\n'
        'template = "calendar/new_season.txt.j2"\naudience = { everyone = true }\n', encoding="utf-8")

    def siyu(*words: str) -> Any:
        code = main([*words, "--config", str(config)])
        out = capsys.readouterr().out
        assert code == 0, out
        return json.loads(out) if "--json" in words else out

    assert siyu("import", "members", str(folder / "members.csv"), "--json")["imported"] == 2
    orders = siyu("import", "orders", str(folder / "orders.csv"), "--json")
    assert (orders["imported"], orders["rejected"]) == (1, 2)
    assert [r["line"] for r in orders["rejects"]] == [3, 4]
    assert siyu("import", "orders", str(folder / "orders.csv"), "--json")["unchanged"] == 1  # again: nothing new

    recomputed = siyu("layers", "recompute", "--json")
    assert {s["scheme"]: s["members"] for s in recomputed["schemes"]}["value"] == 2
    assert sum(layer["members"] for layer in siyu("layers", "show", "--json")["pyramid"]) == 2

    care = siyu("care", "run", "--date", "2026-08-15", "--dry-run", "--json")
    # 王芳's birthday, but she is known only from the CRM: no platform to greet her on, no owner.
    assert (care["total"], care["unreachable"]) == (0, 1)

    assert "new-season" in siyu("calendar", "load", str(folder / "calendar.toml"))
    assert 'id = "new-season"' in siyu("calendar", "export")
    preview = siyu("calendar", "preview", "--from", "2026-12-04", "--days", "1", "--json")
    assert "new-season" in json.dumps(preview, ensure_ascii=False)

    assert siyu("tasks", "list", "--json")["tasks"] == []


HEAVY = ("aiohttp", "sqlalchemy", "apscheduler", "jinja2", "bot.web.app", "bot.console.site")


@pytest.mark.parametrize("argv", [["--help"], ["calendar", "preview", "--days", "x"], ["--version"]])
def test_help_and_argument_errors_answer_without_loading_the_application(argv: list[str]) -> None:
    # Operators script `siyu`: help and a mistyped flag must not load the server first.
    probe = (
        "import sys\n"
        "from bot.cli.main import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as done:\n"
        "    code = done.code\n"
        f"print('LOADED', [m for m in {HEAVY!r} if m in sys.modules], code, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert "LOADED [] " in result.stderr, result.stderr
    assert result.stderr.strip().endswith("0" if argv[0].startswith("--") else "2")


def test_siyu_version_names_the_installed_release(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"siyu {version('siyu')}"


HOSTILE_NAME = "ansi\x1b]0;PWNED\x07\x1b[31m[red]R[/red]\u202egnp.exe\x9b2J"


@pytest.mark.parametrize("as_json", [False, True])
def test_member_show_escapes_what_a_member_wrote(config: Path, capsys: pytest.CaptureFixture[str], as_json: bool) -> None:
    # Issue 14 item 13: a member's name reached the terminal raw (the window retitled,
    # red text) and rich rendered its markup.
    async def prepare(sessions):  # type: ignore[no-untyped-def]
        async with sessions() as session, session.begin():
            member = await resolve_member(session, "sandbox", "m1", HOSTILE_NAME, utcnow())
            member.name = HOSTILE_NAME
            return member.id

    member_id = run(with_sessions("sqlite:///" + str(config.parent / "siyu.db"), prepare))
    capsys.readouterr()
    assert main(["member", "show", str(member_id), "--config", str(config), *(["--json"] if as_json else [])]) == 0
    out = capsys.readouterr().out
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in out
    if as_json:
        assert json.loads(out)["name"] == HOSTILE_NAME  # still exact for a script
    else:
        assert "[red]R[/red]" in out and "\\x1b]0;PWNED\\x07" in out and "\\u202e" in out


def test_the_demo_care_history_shows_a_real_effect_on_the_outcomes_page_figures(tmp_path: Path) -> None:
    """Members a care message reached bought more often in the week after than those held
    out: the seeded effect the README tells operators how to read."""
    from datetime import datetime, timedelta, timezone

    from storage.outcomes import outcome_figures

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    upgrade(url)

    async def figures(sessions):  # type: ignore[no-untyped-def]
        await seed(sessions, TODAY)
        end = datetime.combine(TODAY, datetime.min.time(), tzinfo=timezone.utc)
        async with sessions() as session:
            return await outcome_figures(session, "occasion", end - timedelta(days=30), end, {"occasion": 7})

    rows = {r.key: r for r in run(with_sessions(url, figures))}
    assert set(rows) == {"birthday", "winback"}
    for row in rows.values():
        assert row.held_out.members >= 30 and row.reached.members > 2 * row.held_out.members
        assert row.reached.converted / row.reached.members > row.held_out.converted / row.held_out.members


def test_member_show_gives_her_lifetime_value_once_a_fit_exists(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from storage.ltv import save_fit
    from storage.outcome_models import LtvScore

    async def prepare(sessions):  # type: ignore[no-untyped-def]
        async with sessions() as session, session.begin():
            member = await resolve_member(session, "sandbox", "王芳", "王芳", utcnow())
            other = await resolve_member(session, "sandbox", "李娜", "李娜", utcnow())
            return member.id, other.id

    async def fit(sessions):  # type: ignore[no-untyped-def]
        async with sessions() as session, session.begin():
            await save_fit(session, TODAY, 120, {"unit": "week", "horizon_days": 90}, utcnow())
            session.add(LtvScore(member_id=her, as_of=TODAY, p_alive=0.834, orders_90d=2.43, clv_90d_cents=21_650.0))

    url = "sqlite:///" + str(config.parent / "siyu.db")
    her, other = run(with_sessions(url, prepare))
    assert main(["member", "show", str(her), "--json", "--config", str(config)]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["ltv"] is None and "siyu ltv fit" in card["ltv_missing"]
    assert main(["member", "show", str(her), "--config", str(config)]) == 0
    assert "lifetime value: none yet" in capsys.readouterr().out

    run(with_sessions(url, fit))
    assert main(["member", "show", str(her), "--json", "--config", str(config)]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["ltv"] == {"as_of": "2026-11-23", "p_alive": 0.834, "orders": 2.43, "spend_yuan": 216.5,
                           "horizon_days": 90} and card["ltv_missing"] is None
    assert main(["member", "show", str(her), "--config", str(config)]) == 0
    text = capsys.readouterr().out
    assert "83%" in text and "2.4" in text and "216.50" in text and "未来 90 天" in text
    # A fit that ran before she had an order: none for her, and the reason says so.
    assert main(["member", "show", str(other), "--json", "--config", str(config)]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["ltv"] is None and "还没有订单" in card["ltv_missing"]
