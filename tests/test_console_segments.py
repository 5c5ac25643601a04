"""The members page's segment builder and bulk actions through the real server and
database: the live count, saving a segment and using it as a calendar audience, bulk
tags, assignment and transfer, formula-safe exports with masked phones, the log of every
bulk action, and what a staff login may not do; the pure form reader and cell guard."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Awaitable, Callable
from datetime import date

from multidict import MultiDict
from openpyxl import load_workbook
from sqlalchemy import select

from bot.console.export_files import safe_cell
from bot.console.segment_form import read_rule, rule_query
from storage import audiences
from storage.engine import SessionFactory
from storage.models import Member, Order, StaffTask, utcnow
from storage.segment_models import BulkAction, Segment
from storage.segments import SegmentRule
from storage.tags import apply_tag, ensure_tag, tags_of
from tests.console_harness import OPERATOR_TOKEN, ConsoleClient, ConsoleServer

LogIn = Callable[..., Awaitable[ConsoleClient]]
SCHEMES = {"value": ["super", "loyal", "new"], "lifecycle": ["active", "silent"]}


def rows_of(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-testid="member-row" data-member="(\d+)"', page)]


async def tag(sessions: SessionFactory, member_id: int, name: str, group: str = "") -> None:
    async with sessions() as session, session.begin():
        await apply_tag(session, member_id, await ensure_tag(session, name, group), "rule", "r", utcnow())


async def bulk_log(sessions: SessionFactory) -> list[tuple[str, str, int]]:
    async with sessions() as session:
        found = (await session.execute(select(BulkAction).order_by(BulkAction.id))).scalars().all()  # type: ignore[arg-type]
    return [(b.login, b.action, b.members) for b in found]


async def raw_post(client: ConsoleClient, path: str, data: list[tuple[str, str]]) -> tuple[int, bytes, dict[str, str]]:
    form = [*data, ("csrf", await client.csrf())]
    async with client.http.post(client.base + path, data=form, allow_redirects=True) as response:
        return response.status, await response.read(), dict(response.headers)


# -- the builder ----------------------------------------------------------------------------


async def test_an_operator_builds_a_segment_counts_it_saves_it_and_the_calendar_uses_it(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    m = console.brand.members
    await tag(sessions, m["王芳"], "面包控")
    await tag(sessions, m["赵雪"], "面包控")
    await tag(sessions, m["赵雪"], "已退订")
    async with sessions() as session, session.begin():
        session.add(Order(order_no="A-1", member_id=m["王芳"], amount_cents=30_000, ordered_at=utcnow()))
    ops = await log_in("ops")

    query = "tags_any=面包控&tags_none=已退订&spend_min=200"
    page = await ops.get(f"/admin/members?{query}")
    assert rows_of(page) == [m["王芳"]]
    assert "符合条件：1 人" in page
    counted = json.loads(await ops.get(f"/admin/members/count?{query}"))
    assert counted["count"] == 1
    assert json.loads(await ops.get("/admin/members/count?tags_any=面包控"))["count"] == 2
    assert json.loads(await ops.get("/admin/members/count?stores=xuhui"))["count"] == 1

    saved = await ops.post("/admin/segments", {"segment_name": "面包高消费", "tags_any": "面包控",
                                               "tags_none": "已退订", "spend_min": "200"})
    assert "细分已保存" in saved and rows_of(saved) == [m["王芳"]]
    async with sessions() as session:
        segment = (await session.execute(select(Segment))).scalars().one()
        assert SegmentRule.from_json(segment.rule).spend_min == 200 and segment.created_by == "ops"
        resolved = await audiences.resolve(session, audiences.Audience(segment="面包高消费"))
        found = await audiences.recipients(session, resolved, "sandbox", 0, 100)
        assert [r.member_id for r in found] == [m["王芳"]]
        nobody = await audiences.resolve(session, audiences.Audience(segment="没有这个细分"))
        assert await audiences.recipients(session, nobody, "sandbox", 0, 100) == []
        classes = await audiences.member_classes(session, {"e": resolved}, "value", [])
        assert sum(c.members for c in classes) == 1


async def test_the_builder_names_bad_input_and_filters_nothing_with_it(console: ConsoleServer, log_in: LogIn) -> None:
    ops = await log_in("ops")
    page = await ops.get("/admin/members?orders_min=abc&joined_from=2026-13-01&r_min=9")
    assert len(re.findall('data-testid="segment-problem"', page)) == 3
    assert sorted(rows_of(page)) == sorted(console.brand.members.values())
    rule, problems = read_rule(MultiDict([("orders_min", "-1"), ("opted_out", "maybe"), ("layer.value", "超级")]), SCHEMES)
    assert len(problems) == 3 and rule.empty


def test_the_form_reads_every_condition_and_writes_it_back() -> None:
    pairs = [("layer.value", "super"), ("layer.value", "loyal"), ("tags_all", "面包控"), ("tags_all", "蛋糕"),
             ("owners", "__none__"), ("owners", "liuyang"), ("active_days", "30"), ("spend_max", "500"),
             ("r_min", "4"), ("opted_out", "no"), ("joined_from", "2026-01-01")]
    rule, problems = read_rule(MultiDict(pairs), SCHEMES)
    assert problems == []
    assert rule.layers == {"value": ("super", "loyal")} and rule.tags_all == ("面包控", "蛋糕")
    assert rule.unowned and rule.owners == ("liuyang",) and rule.scores == {"r_score": 4}
    assert rule.joined_from == date(2026, 1, 1) and rule.opted_out == "no"
    again, _ = read_rule(MultiDict(rule_query(rule)), SCHEMES)
    assert again == rule and SegmentRule.from_json(rule.to_json()) == rule


def test_cells_that_would_be_formulas_are_kept_as_text() -> None:
    assert [safe_cell(v) for v in ("=SUM(A1)", "@x", "+86", "-1", "王芳", 12)] == ["'=SUM(A1)", "'@x", "'+86", "'-1", "王芳", 12]


# -- bulk actions -----------------------------------------------------------------------------


async def test_bulk_tags_respect_exclusive_groups_and_are_logged(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    m = console.brand.members
    ops = await log_in("ops")
    status, _, _ = await raw_post(ops, "/admin/members/bulk", [
        ("action", "tag_add"), ("tag_name", "A级意向"), ("tag_group", "意向"), ("member", str(m["王芳"])),
        ("member", str(m["李娜"]))])
    assert status == 200
    async with sessions() as session:
        assert "A级意向" in {t.name for t in await tags_of(session, m["王芳"])}
        assert "A级意向" not in {t.name for t in await tags_of(session, m["赵雪"])}
    status, _, _ = await raw_post(ops, "/admin/members/bulk", [
        ("action", "tag_remove"), ("tag_name", "A级意向"), ("tag_group", "意向"), ("scope", "all"),
        ("rule", SegmentRule(tags_any=("A级意向",)).to_json())])
    assert status == 200
    async with sessions() as session:
        assert "A级意向" not in {t.name for t in await tags_of(session, m["王芳"])}
    assert await bulk_log(sessions) == [("ops", "tag_add", 2), ("ops", "tag_remove", 2)]


async def test_assigning_fills_only_the_unowned_and_a_transfer_takes_open_tasks_along(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    m, staff = console.brand.members, console.brand.staff
    async with sessions() as session, session.begin():
        lonely = Member(name="孙丽", store_id=console.brand.stores["xuhui"])
        session.add(lonely)
        await session.flush()
        assert lonely.id is not None
        sunli = lonely.id
    ops = await log_in("ops")
    await raw_post(ops, "/admin/members/bulk", [("action", "assign"), ("staff", "zhoumin"),
                                                 ("member", str(sunli)), ("member", str(m["王芳"]))])
    await raw_post(ops, "/admin/members/bulk", [("action", "transfer"), ("staff", "chenjing"),
                                                 ("member", str(m["王芳"]))])
    async with sessions() as session:
        assert (await session.get(Member, sunli)).owner_staff_id == staff["zhoumin"]  # type: ignore[union-attr]
        assert (await session.get(Member, m["王芳"])).owner_staff_id == staff["chenjing"]  # type: ignore[union-attr]
        task = await session.get(StaffTask, console.brand.tasks["birthday"])
        assert task is not None and task.staff_id == staff["chenjing"]
    assert await bulk_log(sessions) == [("ops", "assign", 1), ("ops", "transfer", 1)]
    status, body, _ = await raw_post(ops, "/admin/members/bulk", [("action", "transfer"), ("staff", "nobody"),
                                                                   ("member", str(sunli))])
    assert status == 400


async def test_an_export_is_formula_safe_and_masks_phones_unless_allowed(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    async with sessions() as session, session.begin():
        sneaky = Member(name="=HYPERLINK(\"http://evil\")", phone="13512345678")
        session.add(sneaky)
    ops = await log_in("ops")
    everyone = SegmentRule(opted_out="no").to_json()
    status, body, headers = await raw_post(ops, "/admin/members/bulk", [
        ("action", "export"), ("format", "csv"), ("scope", "all"), ("rule", everyone)])
    assert status == 200 and "attachment" in headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:3] == ["编号", "姓名", "手机"] and len(rows) == 5
    sneaky_row = next(r for r in rows if "HYPERLINK" in r[1])
    assert sneaky_row[1].startswith("'=") and sneaky_row[2] == "135****5678"
    assert "13800135678" not in body.decode("utf-8-sig")

    status, _, _ = await raw_post(ops, "/admin/members/bulk", [
        ("action", "export"), ("format", "csv"), ("scope", "all"), ("rule", everyone), ("full_phones", "1")])
    assert status == 403
    robot = await log_in("robot", OPERATOR_TOKEN)
    status, body, _ = await raw_post(robot, "/admin/members/bulk", [
        ("action", "export"), ("format", "xlsx"), ("member", str(console.brand.members["王芳"])), ("full_phones", "1")])
    assert status == 200
    sheet = load_workbook(io.BytesIO(body)).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[1][1] == "王芳" and values[1][2] == "13800135678"
    assert [(a, n) for _, a, n in await bulk_log(sessions)] == [("export", 4), ("export", 1)]


async def test_a_staff_login_cannot_bulk_edit_export_or_save_segments(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    m = console.brand.members
    for login in ("liuyang", "chenjing"):
        staff = await log_in(login)
        page = await staff.get("/admin/members")
        assert 'data-testid="bulk-panel"' not in page and 'data-testid="member-pick"' not in page
        for data in ([("action", "tag_add"), ("tag_name", "x")], [("action", "export"), ("format", "csv")],
                     [("action", "transfer"), ("staff", login)]):
            status, _, _ = await raw_post(staff, "/admin/members/bulk", [*data, ("member", str(m["王芳"]))])
            assert status == 403
        status, _, _ = await raw_post(staff, "/admin/segments", [("segment_name", "x"), ("tags_any", "y")])
        assert status == 403
        # The live count stays within what she may read.
        assert json.loads(await staff.get("/admin/members/count?opted_out=no"))["count"] == 2
    assert await bulk_log(sessions) == []
    async with sessions() as session:
        assert (await session.execute(select(Segment))).first() is None
        assert (await session.get(Member, m["王芳"])).owner_staff_id == console.brand.staff["liuyang"]  # type: ignore[union-attr]
