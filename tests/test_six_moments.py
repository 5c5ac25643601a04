"""Six moments a year (六次互动): the pure planner (six touches, anchors fixed, about two
months apart) and, through the database, plans for the top layer and their tasks, each
made once when due."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select, update

from bot.cli.inspect import member_show
from bot.settings.model import Settings
from scheduler.care import CarePlan
from scheduler.six_moments import MAX_GAP, MIN_GAP, SixMomentsPlan, plan_six_moments
from storage.engine import SessionFactory
from storage.models import LayerAssignment, SixMomentsTouch, StaffTask
from tests.test_care import FESTIVALS, PERSONA, TODAY, Seed, scan

START = date(2026, 11, 23)


def gaps(touches: list) -> list[int]:  # type: ignore[type-arg]
    days = [t.due_date for t in touches]
    return [(b - a).days for a, b in zip(days, days[1:])]


@pytest.mark.parametrize(("birthday", "anniversary"), [
    (30, 200), (5, 98), (100, 160), (0, 182), (300, 30), (60, 120), (250, 10), (45, 90), (140, 280),
])
def test_six_touches_in_order_anchors_fixed_about_two_months_apart(birthday: int, anniversary: int) -> None:
    b, a = START + timedelta(days=birthday), START + timedelta(days=anniversary)
    plan = plan_six_moments(START, b, a)
    assert len(plan) == 6
    assert [t.due_date for t in plan] == sorted(t.due_date for t in plan)
    assert all(START <= t.due_date < START + timedelta(days=365) for t in plan)
    assert [t.due_date for t in plan if t.kind == "birthday"] == [b]
    assert [t.due_date for t in plan if t.kind == "anniversary"] == [a]
    assert all(MIN_GAP <= g <= MAX_GAP for g in gaps(plan)), gaps(plan)
    assert sorted(t.kind for t in plan) == sorted(["birthday", "anniversary", "festival", "preview", "check_in",
                                                   "invitation"])


def test_any_two_anchors_at_least_45_days_apart_keep_the_touches_roughly_two_months_apart() -> None:
    for separation in range(MIN_GAP, 365 - MIN_GAP + 1):
        # Anchors 76-89 days apart (either way round the year) fit no whole number of
        # 45-75-day steps: there the spacing bends by a few days.
        low, high = (40, 82) if 75 < min(separation, 365 - separation) < 90 else (MIN_GAP, MAX_GAP)
        for offset in (0, 120, 300):
            plan = plan_six_moments(START, START + timedelta(days=offset),
                                    START + timedelta(days=(offset + separation) % 365))
            assert len(plan) == 6 and all(low <= g <= high for g in gaps(plan)), (separation, offset, gaps(plan))


def test_close_anchors_stay_fixed_and_the_rest_spreads_out() -> None:
    plan = plan_six_moments(START, START + timedelta(days=100), START + timedelta(days=104))
    assert [t.kind for t in plan].count("birthday") == 1 and gaps(plan).count(4) == 1
    assert all(MIN_GAP <= g <= MAX_GAP for g in gaps(plan) if g != 4)
    same_day = plan_six_moments(START, START + timedelta(days=50), START + timedelta(days=50))
    assert len(same_day) == 6 and same_day[0].label == "生日 · 入会周年"
    assert all(MIN_GAP <= g <= MAX_GAP for g in gaps(same_day))


def test_without_anchors_six_fillers_and_a_festival_touch_lands_on_the_festival() -> None:
    plan = plan_six_moments(START, None, None)
    assert len(plan) == 6 and all(MIN_GAP <= g <= MAX_GAP for g in gaps(plan))
    festivals = [("中秋", date(2027, 9, 15)), ("春节", date(2027, 2, 6))]
    plan = plan_six_moments(START, START + timedelta(days=5), START + timedelta(days=98), festivals=festivals)
    festive = [t for t in plan if t.kind == "festival"]
    assert len(festive) == 1 and festive[0].label in ("中秋", "春节")
    assert festive[0].due_date in (date(2027, 9, 15), date(2027, 2, 6))
    assert all(MIN_GAP <= g <= MAX_GAP for g in gaps(plan))


# ── Through the database ────────────────────────────────────────────────────────────────

SIX = SixMomentsPlan("value", "super", days_ahead=7, festivals=FESTIVALS, care_task_kinds=frozenset({"birthday",
                                                                                                      "anniversary"}))
PLAN = CarePlan(scheme="value", top_layer="super", festivals=FESTIVALS, persona=PERSONA, six_moments=SIX)


async def touches(sessions: SessionFactory) -> list[SixMomentsTouch]:
    async with sessions() as session:
        statement = select(SixMomentsTouch).order_by(SixMomentsTouch.member_id, SixMomentsTouch.slot)
        return list((await session.execute(statement)).scalars())


async def six_tasks(sessions: SessionFactory) -> list[StaffTask]:
    async with sessions() as session:
        return list((await session.execute(select(StaffTask).where(StaffTask.kind == "six_moments"))).scalars())


async def test_the_top_layer_is_planned_and_each_touch_becomes_one_task_when_due(sessions: SessionFactory) -> None:
    seed = Seed(sessions)
    owner = await seed.staff("zhangsan")
    top = await seed.member("超级", birthday=(11, 28), since=date(2024, 3, 1), layer="super", owner=owner)
    entrant = await seed.member("新晋", layer="core")
    await seed.member("走了", layer="super", left=True)

    dry = await scan(sessions, PLAN, dry_run=True)
    assert dry.six_moments is not None and dry.six_moments.planned_members == 1 and await touches(sessions) == []
    first = await scan(sessions, PLAN)
    assert first.six_moments is not None and first.six_moments.planned_members == 1
    plan = await touches(sessions)
    assert [t.slot for t in plan] == [1, 2, 3, 4, 5, 6] and {t.member_id for t in plan} == {top}
    assert plan[0].kind == "birthday" and plan[0].due_date == date(2026, 11, 28) and plan[0].year == 2026
    assert first.six_moments.tasks == 0  # the birthday waits for its care task (three days ahead)

    # Three days before her birthday the care scan makes the gift task; the touch links to it.
    linked = await scan(sessions, PLAN, day=date(2026, 11, 25))
    assert linked.six_moments is not None and linked.six_moments.linked == 1 and linked.six_moments.tasks == 0
    async with sessions() as session:
        gift = (await session.execute(select(StaffTask.id).where(StaffTask.dedupe_key == f"care-task:birthday:2026:{top}")))
        gift_id = gift.scalar_one()
    assert (await touches(sessions))[0].task_id == gift_id
    assert await six_tasks(sessions) == []

    # The next touch becomes a task seven days ahead, once, for her owner.
    second = plan[1]
    for day in (second.due_date - timedelta(days=8), second.due_date - timedelta(days=7),
                second.due_date - timedelta(days=7), second.due_date - timedelta(days=2)):
        await scan(sessions, PLAN, day=day)
    made = await six_tasks(sessions)
    assert [(t.dedupe_key, t.due_date, t.staff_id) for t in made] == [(f"six:{top}:2026:2", second.due_date, owner)]
    assert second.label in made[0].title and "请亲自完成" in made[0].body
    assert (await touches(sessions))[1].task_id == made[0].id

    # A member entering the top layer is planned by the next run; nobody is planned twice.
    async with sessions() as session, session.begin():
        await session.execute(update(LayerAssignment).where(LayerAssignment.member_id == entrant).values(layer="super"))
    later = await scan(sessions, PLAN, day=second.due_date)
    assert later.six_moments is not None and later.six_moments.planned_members == 1
    assert {t.member_id for t in await touches(sessions)} == {top, entrant} and len(await touches(sessions)) == 12
    assert {t.year for t in await touches(sessions) if t.member_id == entrant} == {second.due_date.year}


async def test_member_show_gives_the_plan_and_the_next_care_moment(db_url: str, sessions: SessionFactory,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    seed = Seed(sessions)
    top = await seed.member("超级", birthday=(11, 28), since=date(2024, 3, 1), layer="super")
    await scan(sessions, PLAN)
    settings = Settings(storage={"url": db_url})
    assert await member_show(settings, str(top), as_json=True) == 0
    card = json.loads(capsys.readouterr().out)
    assert [t["kind"] for t in card["six_moments"]][0] == "birthday" and len(card["six_moments"]) == 6
    assert card["six_moments"][0]["due_date"] == "2026-11-28" and card["six_moments"][0]["task_status"] is None
    assert card["next_care"]["occasion"] in ("birthday", "anniversary") and card["next_care"]["in_days"] >= 0
    assert await member_show(settings, str(top), as_json=False) == 0
    assert "六次互动" in capsys.readouterr().out
    assert TODAY.year == 2026
