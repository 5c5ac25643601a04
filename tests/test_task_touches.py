"""A staff task marked done is a touch from that moment, with the member's layer then:
through the console's button on the real server, and through close_task itself; the
catch-up (sync_task_touches) adds nothing for it afterwards."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from storage.engine import SessionFactory
from storage.models import LayerAssignment, StaffTask
from storage.outcome_models import OutcomeTouch
from storage.outcomes import outcome_figures, sync_task_touches
from storage.tasks import close_task
from tests.console_harness import ConsoleServer, log_in  # noqa: F401 — the fixture
from tests.test_console_auth import LogIn
from tests.test_outcomes import WINDOWS, buy, members

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc)


async def set_layer(sessions: SessionFactory, member_id: int, layer: str) -> None:
    async with sessions() as session, session.begin():
        found = (await session.execute(select(LayerAssignment).where(
            LayerAssignment.member_id == member_id, LayerAssignment.scheme == "value"))).scalar_one_or_none()
        session.add(found or LayerAssignment(member_id=member_id, scheme="value", layer=layer))
        if found:
            found.layer = layer


async def test_a_task_closed_keeps_her_layer_of_that_day_after_she_moves(sessions: SessionFactory) -> None:
    [her] = await members(sessions, 1)
    await set_layer(sessions, her, "vip")
    async with sessions() as session, session.begin():
        task = StaffTask(dedupe_key="care:birthday:1", member_id=her, kind="care", title="生日关怀",
                         due_date=T0.date(), status="open")
        skipped = StaffTask(dedupe_key="care:birthday:2", member_id=her, kind="care", title="跳过的",
                            due_date=T0.date(), status="open")
        session.add_all([task, skipped])
        await session.flush()
        await close_task(session, task, "done", None, T0)
        await close_task(session, skipped, "skipped", "不在本地", T0)  # skipped: no touch
    await set_layer(sessions, her, "regular")  # the recompute moved her afterwards
    async with sessions() as session, session.begin():
        assert await sync_task_touches(session) == 0  # already recorded when it was closed
        [touch] = (await session.execute(select(OutcomeTouch))).scalars().all()
    assert (touch.source_kind, touch.source_ref, touch.layer, touch.at.replace(tzinfo=timezone.utc)) == (
        "staff", "care", "vip", T0)
    await buy(sessions, her, T0 + timedelta(days=2))
    async with sessions() as session:
        [row] = await outcome_figures(session, "layer", T0 - timedelta(days=1), T0 + timedelta(days=1), WINDOWS)
    assert (row.key, row.reached.converted, row.credited_orders) == ("vip", 1, 1)


async def test_the_catch_up_still_records_tasks_closed_before(sessions: SessionFactory) -> None:
    [her] = await members(sessions, 1)
    await set_layer(sessions, her, "vip")
    async with sessions() as session, session.begin():
        session.add(StaffTask(dedupe_key="old", member_id=her, kind="care", title="旧任务", due_date=T0.date(),
                              status="done", done_at=T0))
    async with sessions() as session, session.begin():
        assert await sync_task_touches(session) == 1
        assert await sync_task_touches(session) == 0


async def test_marking_done_in_the_console_records_the_touch_at_once(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory,  # noqa: F811
) -> None:
    zhaoxue, task = console.brand.members["赵雪"], console.brand.tasks["revisit"]
    await set_layer(sessions, zhaoxue, "at_risk")
    zhoumin = await log_in("zhoumin")
    assert "已标记为完成" in await zhoumin.post(f"/admin/tasks/{task}/done", {"note": "打过电话了"})
    await set_layer(sessions, zhaoxue, "active")
    async with sessions() as session:
        [touch] = (await session.execute(select(OutcomeTouch))).scalars().all()
        closed = await session.get(StaffTask, task)
    assert closed is not None and closed.done_at is not None
    assert (touch.member_id, touch.ref, touch.layer, touch.staff_id) == (
        zhaoxue, f"task:{task}", "at_risk", console.brand.staff["zhoumin"])
    assert touch.at.replace(tzinfo=None) == closed.done_at.replace(tzinfo=None)
    # The catch-up finds nothing left to do for it.
    async with sessions() as session, session.begin():
        assert await sync_task_touches(session) == 0
