"""Layers: RFM scores (quantile edges and ties, fixed thresholds), first-match order,
unknown metrics and tags refused, history and the at-risk task created once — in the
pure rules and through the database on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.cli.main import main
from bot.settings.model import ConfigError, load_settings
from content_templates.renderer import Renderer
from scheduler.layer_recompute import recompute
from scheduler.layer_rules import Condition, Layer, RfmSpec, Scheme, parse_condition, quantile_positions, score
from storage.engine import SessionFactory
from storage.models import LayerAssignment, LayerMove, Member, Order, Staff, StaffTask
from storage.tags import apply_tag, ensure_tag

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
TODAY = date(2026, 11, 23)


# ── Pure ───────────────────────────────────────────────────────────────────────────────


def test_quintile_edges_split_ten_values_in_twos() -> None:
    values = list(range(1, 11))
    cuts = [values[p - 1] for p in quantile_positions(len(values))]
    assert cuts == [2, 4, 6, 8]
    assert [score(v, cuts) for v in values] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_ties_on_an_edge_score_alike_and_the_same_value_never_splits() -> None:
    values = [1, 1, 1, 1, 1, 1, 2, 3, 5, 9]
    cuts = [values[p - 1] for p in quantile_positions(len(values))]
    scores = [score(v, cuts) for v in values]
    assert len({s for v, s in zip(values, scores) if v == 1}) == 1
    assert scores == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]  # the tie fills three quintiles: all score 1
    assert [score(7, [7, 7, 7, 7]), score(8, [7, 7, 7, 7])] == [1, 5]  # everyone equal: all 1
    assert score(None, cuts) is None and quantile_positions(0) == []


@pytest.mark.parametrize(
    ("metric", "written", "condition"),
    [
        ("r_score", ">= 4", Condition("r_score", ">=", 4.0)),
        ("frequency", 0, Condition("frequency", "==", 0.0)),
        ("paid_member", True, Condition("paid_member", "==", True)),
        ("interactions_30d", "< 2", Condition("interactions_30d", "<", 2.0)),
        ("monetary", "> 99.5", Condition("monetary", ">", 99.5)),
    ],
)
def test_conditions_read_as_written(metric: str, written: object, condition: Condition) -> None:
    assert parse_condition(metric, written) == condition


@pytest.mark.parametrize(("metric", "written"), [("loyalty", ">= 1"), ("r_score", "about 4"), ("paid_member", ">= true")])
def test_unreadable_conditions_are_refused(metric: str, written: object) -> None:
    with pytest.raises(ValueError):
        parse_condition(metric, written)


def test_a_missing_value_never_holds() -> None:
    assert not Condition("r_score", "<=", 1).holds(None)
    assert Condition("r_score", "<=", 1).holds(1)


# ── Through the database ───────────────────────────────────────────────────────────────

VALUE = Scheme("value", (
    Layer("super", "超级用户", (Condition("r_score", ">=", 4), Condition("f_score", ">=", 4))),
    Layer("core", "核心用户", (Condition("f_score", ">=", 3),)),
    Layer("fan", "粉丝", tags_any=("蛋糕控",)),
    Layer("ordinary", "普通用户"),
), "价值分层", staff_tasks=True)


async def seed(sessions: SessionFactory, orders: dict[str, list[int]]) -> dict[str, int]:
    """Members named by the keys, each with orders this many days before NOW (38 yuan each)."""
    ids: dict[str, int] = {}
    async with sessions() as session, session.begin():
        owner = Staff(userid="zhangsan", name="张三")
        session.add(owner)
        await session.flush()
        for name, days in orders.items():
            member = Member(name=name, owner_staff_id=owner.id, member_since=date(2024, 1, 1),
                            created_at=NOW - timedelta(days=30), updated_at=NOW - timedelta(days=30))
            session.add(member)
            await session.flush()
            assert member.id is not None
            ids[name] = member.id
            session.add_all(Order(order_no=f"{name}-{n}", member_id=member.id, amount_cents=3800,
                                  ordered_at=NOW - timedelta(days=d)) for n, d in enumerate(days))
    return ids


async def run(sessions: SessionFactory, scheme: Scheme = VALUE, rfm: RfmSpec = RfmSpec(), *, now: datetime = NOW,
              full: bool = False):  # noqa: ANN201
    async with sessions() as session, session.begin():
        return await recompute(session, scheme, rfm, now, now.date(), Renderer().render, full=full)


async def layers(sessions: SessionFactory, scheme: str = "value") -> dict[int, str]:
    async with sessions() as session:
        rows = await session.execute(select(LayerAssignment.member_id, LayerAssignment.layer)
                                     .where(LayerAssignment.scheme == scheme))
        return dict(rows.all())


async def test_first_match_wins_and_each_assignment_keeps_its_metrics(sessions: SessionFactory) -> None:
    # Ten buyers: frequency 1..10, the most frequent also the most recent.
    ids = await seed(sessions, {f"m{n}": [n + k for k in range(n)] for n in range(1, 11)} | {"无单": []})
    async with sessions() as session, session.begin():
        await apply_tag(session, ids["m1"], await ensure_tag(session, "蛋糕控", "口味偏好"), "rule", "cake", NOW)
    report = await run(sessions)
    assert report.full and report.members == 11 and report.moves == 11 and report.tasks == 0  # first run: no tasks
    found = await layers(sessions)
    # m9 and m10 are in the top frequency quintile but their last orders (9 and 10 days ago)
    # are the oldest: not super. Super needs both; core needs frequency alone.
    assert found[ids["m7"]] == found[ids["m8"]] == "core"
    assert found[ids["m1"]] == "fan"  # low scores, but the tag
    assert found[ids["无单"]] == "ordinary"  # no order: no scores, only the catch-all holds
    async with sessions() as session:
        metrics = (await session.execute(select(LayerAssignment.metrics)
                                         .where(LayerAssignment.member_id == ids["m10"]))).scalar_one()
    assert json.loads(metrics)["frequency"] == 10 and json.loads(metrics)["r_score"] is not None


async def test_fixed_thresholds_score_without_looking_at_others(sessions: SessionFactory) -> None:
    ids = await seed(sessions, {"常客": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], "新客": [200]})
    rules = RfmSpec(method="thresholds", recency_days=(365, 180, 90, 30), frequency=(2, 4, 8, 16))
    await run(sessions, rfm=rules)
    found = await layers(sessions)
    assert found[ids["常客"]] == "super"  # 16 orders, last 1 day ago: 5 and 5
    assert found[ids["新客"]] == "ordinary"  # one order 200 days ago: R 2, F 1


async def test_a_move_up_and_a_fall_from_the_top_each_make_one_task(sessions: SessionFactory) -> None:
    # The more often she buys, the more recently: m7..m10 are super, m1 is not.
    ids = await seed(sessions, {f"m{n}": [11 - n + k for k in range(n)] for n in range(1, 11)})
    await run(sessions)
    top = sorted(member for member, layer in (await layers(sessions)).items() if layer == "super")
    assert top == [ids[f"m{n}"] for n in range(7, 11)]
    fallen = ids["m8"]
    # She stops buying for a year (her orders leave the window); m1 buys a lot, just now.
    async with sessions() as session, session.begin():
        await session.execute(update(Order).where(Order.member_id == fallen)
                              .values(ordered_at=NOW - timedelta(days=400)))
        session.add_all(Order(order_no=f"late-{n}", member_id=ids["m1"], amount_cents=9900,
                              ordered_at=NOW - timedelta(hours=n + 1)) for n in range(12))
        # Corrected by hand (a refund, say), which touches her record.
        await session.execute(update(Member).where(Member.id == fallen).values(updated_at=NOW + timedelta(minutes=1)))
    report = await run(sessions, now=NOW + timedelta(minutes=5))
    assert not report.full
    found = await layers(sessions)
    assert found[ids["m1"]] == "super" and found[fallen] not in ("super", "core")
    async with sessions() as session:
        tasks = (await session.execute(select(StaffTask.kind, StaffTask.member_id).order_by(StaffTask.id))).all()
        moves = (await session.execute(select(LayerMove.member_id, LayerMove.from_layer, LayerMove.to_layer)
                                       .where(LayerMove.from_layer.is_not(None)))).all()  # type: ignore[union-attr]
    assert sorted(tasks) == sorted([("top_layer_welcome", ids["m1"]), ("at_risk", fallen)])
    assert (fallen, "super", found[fallen]) in moves
    # Nothing changed since: the next run moves nobody and adds no task.
    again = await run(sessions, now=NOW + timedelta(minutes=10))
    assert again.moves == 0 and again.tasks == 0 and again.members == 0
    # A full run rescales the quintiles and may move others, but never repeats a task.
    full = await run(sessions, now=NOW + timedelta(minutes=15), full=True)
    async with sessions() as session:
        after = (await session.execute(select(StaffTask.kind, StaffTask.member_id).order_by(StaffTask.id))).all()
    assert after[:2] == tasks and len(after) == 2 + full.tasks


# ── Configuration ──────────────────────────────────────────────────────────────────────


def test_an_unknown_metric_in_a_scheme_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "siyu.toml"
    path.write_text('[[layers.schemes]]\nname = "x"\n[[layers.schemes.layers]]\nname = "a"\nwhen = { loyalty = ">= 3" }\n')
    with pytest.raises(ConfigError, match=r"layers\.schemes\[0\]\.layers\[0\]\.when: .*unknown metric 'loyalty'"):
        load_settings(path)


def test_siyu_check_names_an_unknown_tag_in_a_layer_condition(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "siyu.toml"
    path.write_text(
        '[[tags.rules]]\nid = "cake"\ntag = "蛋糕控"\nkeywords = ["蛋糕"]\n'
        '[[layers.schemes]]\nname = "taste"\n'
        '[[layers.schemes.layers]]\nname = "cake"\ntags_any = ["蛋糕控"]\n'
        '[[layers.schemes.layers]]\nname = "tea"\ntags_all = ["奶茶控"]\n'
    )
    assert main(["check", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "layers.schemes[0]: unknown tag '奶茶控'" in err and "蛋糕控" not in err


def test_the_shipped_schemes_load_and_check(tmp_path: Path) -> None:
    schemes = load_settings(Path(__file__).resolve().parent.parent / "config.example.toml").layers.schemes
    assert {"value", "lifecycle", "evolution"} <= {s.name for s in schemes}
    value = next(s for s in schemes if s.name == "value").scheme()
    assert value.top() == "super" and value.top_two() == {"super", "core"} and value.staff_tasks


def test_siyu_layers_recompute_reports_each_scheme_and_refuses_an_unknown_one(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import write_config

    config = write_config(tmp_path, db_url)
    assert main(["layers", "recompute", "--json", "--config", str(config)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [s["scheme"] for s in report["schemes"]] == ["value", "lifecycle", "evolution"]
    assert all(s["full"] for s in report["schemes"])
    assert main(["layers", "recompute", "--scheme", "loyalty", "--config", str(config)]) == 1
    assert "no layer scheme 'loyalty'" in capsys.readouterr().err


def test_commands_on_a_database_behind_the_code_say_to_upgrade(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from storage.migrate import upgrade
    from tests.conftest import write_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0003")
    assert main(["layers", "recompute", "--config", str(write_config(tmp_path, url))]) == 1
    assert "run `siyu db upgrade" in capsys.readouterr().err


def test_our_birthday_message_does_not_wake_a_dormant_member_but_her_reply_does(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Activity is what she does: a member whose only interaction is our birthday message
    stays 沉睡 after `siyu layers recompute`, and her 近 30 天互动 is 0."""
    from sqlalchemy import create_engine

    from storage.engine import sync_url
    from storage.models import Interaction
    from tests.conftest import write_config

    now = datetime.now(timezone.utc)
    engine = create_engine(sync_url(db_url))
    ids: dict[str, int] = {}
    with engine.begin() as connection:
        for name in ("只收到祝福", "回了一句", "点了链接", "下了单"):
            ids[name] = connection.execute(Member.__table__.insert().values(  # type: ignore[attr-defined]
                name=name, member_since=date(2024, 1, 1), created_at=now - timedelta(days=400),
                updated_at=now - timedelta(days=400))).inserted_primary_key[0]
        said = [("只收到祝福", "message_out", "生日快乐！"), ("回了一句", "message_out", "生日快乐！"),
                ("回了一句", "message_in", "谢谢小禾"), ("点了链接", "event", "link_click")]
        connection.execute(Interaction.__table__.insert(), [  # type: ignore[attr-defined]
            {"member_id": ids[who], "kind": kind, "platform": "sandbox", "at": now - timedelta(days=3), "text": text,
             "ref": f"t:{n}"} for n, (who, kind, text) in enumerate(said)])
        connection.execute(Order.__table__.insert().values(  # type: ignore[attr-defined]
            order_no="o-1", member_id=ids["下了单"], amount_cents=3800, ordered_at=now - timedelta(days=400)))
    config = write_config(tmp_path, db_url)
    assert main(["layers", "recompute", "--scheme", "lifecycle", "--config", str(config)]) == 0
    with engine.connect() as connection:
        rows = connection.execute(select(LayerAssignment.member_id, LayerAssignment.layer, LayerAssignment.metrics)
                                  .where(LayerAssignment.scheme == "lifecycle")).all()
    engine.dispose()
    found = {member: (layer, json.loads(metrics)) for member, layer, metrics in rows}
    assert found[ids["只收到祝福"]][0] == "dormant"
    assert found[ids["只收到祝福"]][1]["interactions_30d"] == 0  # the member page's 近 30 天互动
    assert found[ids["回了一句"]][0] == "active" and found[ids["回了一句"]][1]["interactions_30d"] == 1
    assert found[ids["点了链接"]][0] == "active"
    # An order 400 days ago is out of every window: she is neither active nor counted.
    assert found[ids["下了单"]][1]["interactions_90d"] == 0


async def test_a_scheme_may_say_super_users_at_risk_by_their_chance_of_still_buying(sessions: SessionFactory) -> None:
    from storage.outcome_models import LtvScore

    ids = await seed(sessions, {"常客": [1, 2, 3], "淡了": [100, 110, 120], "没分": [5]})
    async with sessions() as session, session.begin():
        session.add_all([LtvScore(member_id=ids["常客"], as_of=TODAY, p_alive=0.92, orders_90d=3.1, clv_90d_cents=11_000,
                                  scored_at=NOW - timedelta(hours=1)),
                         LtvScore(member_id=ids["淡了"], as_of=TODAY, p_alive=0.18, orders_90d=0.2, clv_90d_cents=900,
                                  scored_at=NOW - timedelta(hours=1))])
    scheme = Scheme("risk", (
        Layer("at_risk", "高价值流失风险", (Condition("frequency", ">=", 3), Condition("p_alive", "<", 0.3))),
        Layer("valuable", "高价值", (Condition("clv_90d", ">=", 100),)),
        Layer("rest", "其他"),
    ))
    await run(sessions, scheme)
    found = await layers(sessions, "risk")
    assert found == {ids["淡了"]: "at_risk", ids["常客"]: "valuable", ids["没分"]: "rest"}  # unscored: no value
    async with sessions() as session:
        metrics = json.loads((await session.execute(select(LayerAssignment.metrics).where(
            LayerAssignment.member_id == ids["常客"], LayerAssignment.scheme == "risk"))).scalar_one())
    assert metrics["p_alive"] == 0.92 and metrics["clv_90d"] == 110.0
    # A new fit changes her scores: an incremental run takes her up.
    async with sessions() as session, session.begin():
        await session.execute(update(LtvScore).where(LtvScore.member_id == ids["常客"])
                              .values(p_alive=0.1, scored_at=NOW + timedelta(minutes=3)))
    report = await run(sessions, scheme, now=NOW + timedelta(minutes=5))
    assert not report.full and report.members == 1
    assert (await layers(sessions, "risk"))[ids["常客"]] == "at_risk"
