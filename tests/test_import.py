"""`siyu import members|orders FILE`: CSV and XLSX exports into members and orders, on
SQLite and PostgreSQL, through `import_command` as the command line runs it."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine, insert, select

import bot.imports.run as import_run
from bot.imports.reader import ImportFileError
from bot.cli.importing import import_command
from bot.cli.parser import siyu_parser
from bot.settings.model import ConfigError, Settings, load_settings
from storage.engine import create_sync_engine
from storage.models import Member, Order, Staff, Store
from tests.conftest import write_config

MEMBERS = Member.__table__  # type: ignore[attr-defined]
ORDERS = Order.__table__  # type: ignore[attr-defined]


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_sync_engine(db_url)
    with engine.begin() as connection:
        store_id = connection.execute(insert(Store.__table__).values(code="jingan", name="静安店")).inserted_primary_key[0]
        connection.execute(insert(Store.__table__).values(code="xuhui", name="徐汇店"))
        connection.execute(insert(Staff.__table__).values(userid="zhangsan", name="张三", store_id=store_id,
                                                          role="staff", active=True))
    yield engine
    engine.dispose()


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as file:
        csv.writer(file).writerows(rows)
    return path


def run_json(settings: Settings, kind: str, path: Path, capsys: pytest.CaptureFixture[str],
             columns: dict[str, str] | None = None, dry_run: bool = False) -> dict[str, Any]:
    assert import_command(settings, kind, path, columns or {}, True, dry_run) == 0  # type: ignore[arg-type]
    return json.loads(capsys.readouterr().out)


def members(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as connection:
        return {row["member_no"]: dict(row) for row in connection.execute(select(MEMBERS)).mappings()}


def orders(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as connection:
        return {row["order_no"]: dict(row) for row in connection.execute(select(ORDERS)).mappings()}


def ids(engine: Engine, table: Any, column: str) -> dict[str, int]:
    with engine.connect() as connection:
        return {key: id_ for id_, key in connection.execute(select(table.c.id, table.c[column]))}


MEMBER_ROWS = [
    ["会员号", "姓名", "手机号", "生日", "历法", "入会日期", "付费会员", "门店", "导购", "推荐人"],
    ["M001", "王芳", "13800000001", "1990-08-15", "", "2020-01-05", "是", "jingan", "zhangsan", ""],
    ["M002", "李娜", "13800000002", "农历1988-闰06-10", "", "2021/3/1", "否", "", "", "M001"],
    ["M003", "陈静", "", "02-29", "", "", "", "xuhui", "", "M004"],  # her referrer comes later
    ["M004", "赵敏", "", "8月15日", "农历", "", "yes", "", "", ""],
    ["M005", "周婷", "", "1990-08-15（农历）", "", "", "", "", "", ""],
    ["M006", "吴倩", "", "农历闰六月初十", "", "", "", "", "", ""],
]


def test_members_csv_with_chinese_headers_and_lunar_birthdays(
    engine: Engine, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_json(settings, "members", write_csv(tmp_path / "members.csv", MEMBER_ROWS), capsys)
    assert (report["read"], report["imported"], report["updated"], report["unchanged"], report["rejected"]) == (6, 6, 0, 0, 0)
    assert report["columns"]["member_no"] == "会员号" and report["columns"]["calendar"] == "历法"
    assert report["rejects_file"] is None and not (tmp_path / "members.csv.rejects.csv").exists()

    found = members(engine)
    stores, staff = ids(engine, Store.__table__, "code"), ids(engine, Staff.__table__, "userid")
    fang = found["M001"]
    assert (fang["name"], fang["phone"], fang["member_since"], fang["paid_member"]) == ("王芳", "13800000001", date(2020, 1, 5), True)
    assert (fang["birth_year"], fang["birth_month"], fang["birth_day"], fang["birthday_calendar"], fang["birth_md"]) == (
        1990, 8, 15, "solar", 815)
    assert (fang["store_id"], fang["owner_staff_id"]) == (stores["jingan"], staff["zhangsan"])
    leap = found["M002"]
    assert (leap["birth_year"], leap["birth_month"], leap["birth_day"], leap["birthday_calendar"],
            leap["birthday_leap_month"], leap["birth_md"]) == (1988, 6, 10, "lunar", True, 610)
    assert leap["referrer_id"] == fang["id"] and leap["paid_member"] is False
    feb29 = found["M003"]
    assert (feb29["birth_year"], feb29["birth_month"], feb29["birth_day"], feb29["birthday_calendar"], feb29["birth_md"]) == (
        None, 2, 29, "solar", 229)
    assert feb29["referrer_id"] == found["M004"]["id"] and feb29["store_id"] == stores["xuhui"]
    assert (found["M004"]["birthday_calendar"], found["M004"]["birth_md"], found["M004"]["paid_member"]) == ("lunar", 815, True)
    assert (found["M005"]["birth_year"], found["M005"]["birthday_calendar"]) == (1990, "lunar")
    assert (found["M006"]["birth_month"], found["M006"]["birth_day"], found["M006"]["birthday_leap_month"]) == (6, 10, True)


def test_members_rejects_and_a_second_run_that_changes_nothing(
    engine: Engine, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        *MEMBER_ROWS,
        ["M007", "坏生日", "", "1990-02-30", "", "", "", "", "", ""],
        ["M008", "无店", "", "", "", "", "", "nowhere", "", ""],
        ["M009", "无导购", "", "", "", "", "", "", "lisi", ""],
        ["M010", "无推荐人", "", "", "", "", "", "", "", "M404"],
        ["M011", "不明", "", "", "", "", "maybe", "", "", ""],
        ["", "没有会员号", "", "", "", "", "", "", "", ""],
        ["M001", "王芳改名", "", "", "", "", "", "", "", ""],  # the same member again, other values
        ["M002", "李娜", "", "", "", "", "", "", "", ""],  # again, same values
    ]
    path = write_csv(tmp_path / "members.csv", rows)
    first = run_json(settings, "members", path, capsys)
    assert (first["read"], first["imported"], first["unchanged"], first["rejected"]) == (14, 6, 1, 7)
    reasons = {reject["line"]: reject["reason"] for reject in first["rejects"]}
    assert reasons == {
        8: "bad birthday '1990-02-30': no such date",
        9: "unknown store nowhere",
        10: "unknown owner lisi (no staff member with that userid)",
        11: "unknown referrer M404",
        12: "bad paid_member 'maybe' (use 是/否, yes/no, true/false or 1/0)",
        13: "missing member_no",
        14: "duplicate member_no M001: an earlier line gives different name",
    }
    assert first["rejects"][0]["row"]["会员号"] == "M007"
    with (tmp_path / "members.csv.rejects.csv").open(encoding="utf-8-sig", newline="") as file:
        written = list(csv.reader(file))
    assert written[0] == ["line", "reason", *MEMBER_ROWS[0]]
    assert [row[0] for row in written[1:]] == ["8", "9", "10", "11", "12", "13", "14"]
    assert written[1][2:] == rows[7]

    before = members(engine)
    assert before["M001"]["name"] == "王芳"
    second = run_json(settings, "members", path, capsys)
    assert (second["read"], second["imported"], second["updated"], second["unchanged"], second["rejected"]) == (14, 0, 0, 7, 7)
    assert members(engine) == before  # not one column, not one updated_at, changed


def test_a_changed_member_row_is_updated_and_an_empty_cell_keeps_the_value(
    engine: Engine, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_json(settings, "members", write_csv(tmp_path / "members.csv", MEMBER_ROWS), capsys)
    before = members(engine)
    changed = write_csv(tmp_path / "changed.csv", [
        ["member_no", "name", "phone", "paid_member"],
        ["M001", "王芳", "", "否"],
        ["M002", "李娜", "13800000002", ""],
    ])
    report = run_json(settings, "members", changed, capsys)
    assert (report["imported"], report["updated"], report["unchanged"]) == (0, 1, 1)
    after = members(engine)
    assert after["M001"]["paid_member"] is False and after["M001"]["phone"] == "13800000001"
    assert after["M001"]["updated_at"] > before["M001"]["updated_at"]
    assert after["M002"] == before["M002"]


def test_members_from_xlsx(engine: Engine, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["会员编号", "姓名", "手机", "生日", "入会日期", "付费会员"])
    sheet.append([10001, "王芳", 13800000001, datetime(1990, 8, 15), datetime(2020, 1, 5), True])
    sheet.append([])  # a blank row is no row
    sheet.append(["10002", "李娜", "13800000002", "农历1988-闰06-10", "2021-03-01", "否"])
    sheet.append(["10003", "坏人", None, "1990-13-01", None, None])
    path = tmp_path / "members.xlsx"
    workbook.save(path)

    report = run_json(settings, "members", path, capsys)
    assert (report["read"], report["imported"], report["rejected"]) == (3, 2, 1)
    assert report["rejects"] == [{"line": 5, "reason": "bad birthday '1990-13-01': no month 13",
                                  "row": {"会员编号": "10003", "姓名": "坏人", "手机": "", "生日": "1990-13-01",
                                          "入会日期": "", "付费会员": ""}}]
    found = members(engine)
    assert (found["10001"]["phone"], found["10001"]["birth_md"], found["10001"]["member_since"],
            found["10001"]["paid_member"]) == ("13800000001", 815, date(2020, 1, 5), True)
    assert (found["10002"]["birthday_calendar"], found["10002"]["birthday_leap_month"]) == ("lunar", True)
    again = run_json(settings, "members", path, capsys)
    assert (again["imported"], again["updated"], again["unchanged"]) == (0, 0, 2)


ORDER_ROWS = [
    ["订单号", "会员号", "实付金额", "下单时间", "门店"],
    ["SO1", "M001", "¥1,280.50", "2026-11-01 14:30", "jingan"],
    ["SO2", "M002", "99", "2026-11-01T14:30:00+08:00", ""],
    ["SO3", "M404", "10", "2026-11-01 14:30", ""],  # unknown member
    ["SO4", "M001", "-5", "2026-11-01 14:30", ""],  # negative amount
    ["SO5", "M001", "5", "2026-13-01 14:30", ""],  # bad date
    ["SO1", "M001", "1280.50", "2026-11-01 14:30:00", "jingan"],  # the same order again: fine
    ["SO1", "M001", "12", "2026-11-01 14:30", "jingan"],  # same id, other amount
    ["SO6", "M002", "0.5", "2026/11/2 9:05", "xuhui"],
    ["SO7", "M001", "12.345", "2026-11-01 14:30", ""],  # three decimals
    ["SO8", "M001", "", "2026-11-01 14:30", ""],  # no amount
    ["SO9", "M002", "8", "2026-11-03 10:00", "nowhere"],  # unknown store
]


def import_members_for_orders(settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_json(settings, "members", write_csv(tmp_path / "members.csv", MEMBER_ROWS), capsys)


@pytest.mark.parametrize("chunk_rows", [None, 2])
def test_orders_rejects_each_bad_row_by_line_and_keeps_the_rest(
    engine: Engine, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, chunk_rows: int | None,
) -> None:
    if chunk_rows:  # chunk boundaries everywhere: the duplicate is in another chunk
        monkeypatch.setattr(import_run, "CHUNK_ROWS", chunk_rows)
    import_members_for_orders(settings, tmp_path, capsys)
    path = write_csv(tmp_path / "orders.csv", ORDER_ROWS)
    report = run_json(settings, "orders", path, capsys)
    assert (report["read"], report["imported"], report["unchanged"], report["rejected"]) == (11, 3, 1, 7)
    assert {r["line"]: r["reason"] for r in report["rejects"]} == {
        4: "unknown member M404",
        5: "negative amount -5",
        6: "bad date '2026-13-01 14:30' in ordered_at",
        8: "duplicate order id SO1 with different amount (1280.50 imported before)",
        10: "bad amount '12.345' (yuan, at most 2 decimals)",
        11: "missing amount",
        12: "unknown store nowhere",
    }
    member_ids = ids(engine, MEMBERS, "member_no")
    stores = ids(engine, Store.__table__, "code")
    stored = orders(engine)
    assert set(stored) == {"SO1", "SO2", "SO6"}
    assert (stored["SO1"]["member_id"], stored["SO1"]["amount_cents"], stored["SO1"]["store_id"]) == (
        member_ids["M001"], 128050, stores["jingan"])
    # Naive times are in the configured zone (Asia/Shanghai), stored in UTC.
    assert stored["SO1"]["ordered_at"] == datetime(2026, 11, 1, 6, 30, tzinfo=timezone.utc)
    assert stored["SO2"]["ordered_at"] == datetime(2026, 11, 1, 6, 30, tzinfo=timezone.utc)
    assert (stored["SO6"]["amount_cents"], stored["SO6"]["ordered_at"]) == (50, datetime(2026, 11, 2, 1, 5, tzinfo=timezone.utc))

    with (tmp_path / "orders.csv.rejects.csv").open(encoding="utf-8-sig", newline="") as file:
        written = list(csv.reader(file))
    assert written[0] == ["line", "reason", *ORDER_ROWS[0]]
    assert [(row[0], row[2:]) for row in written[1:]] == [
        (str(line), ORDER_ROWS[line - 1]) for line in (4, 5, 6, 8, 10, 11, 12)
    ]

    second = run_json(settings, "orders", path, capsys)
    assert (second["read"], second["imported"], second["unchanged"], second["rejected"]) == (11, 0, 4, 7)
    assert orders(engine) == stored


def test_orders_table_output_and_a_duplicate_of_an_order_in_the_database(
    engine: Engine, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import_members_for_orders(settings, tmp_path, capsys)
    write_csv(tmp_path / "first.csv", [["order_no", "member_no", "amount", "ordered_at"], ["A1", "M001", "10", "2026-11-01 10:00"]])
    run_json(settings, "orders", tmp_path / "first.csv", capsys)
    rows = [["order_no", "member_no", "amount", "ordered_at"], *(["B%d" % n, "M404", "1", "2026-11-01 10:00"] for n in range(25)),
            ["A1", "M002", "10", "2026-11-01 10:00"]]
    path = write_csv(tmp_path / "second.csv", rows)
    assert import_command(settings, "orders", path, {}, False, False) == 0
    out = capsys.readouterr().out
    assert "rejected rows (the first 20 of 26)" in out
    assert f"all 26 rejected rows, with their reasons: {tmp_path / 'second.csv.rejects.csv'}" in out
    assert "unknown member M404" in out and "duplicate order id A1" not in out  # line 27: past the first 20
    with (tmp_path / "second.csv.rejects.csv").open(encoding="utf-8-sig") as file:
        assert file.read().splitlines()[-1] == "27,duplicate order id A1 with different member,A1,M002,10,2026-11-01 10:00"
    report = run_json(settings, "orders", path, capsys)
    assert len(report["rejects"]) == 26  # --json gives them all


def test_line_numbers_count_lines_inside_quoted_values_and_blank_lines(
    engine: Engine, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "members.csv"
    path.write_text('member_no,name\nM1,"王\n芳"\n\nM2,李娜\n,nobody\n', encoding="utf-8")
    report = run_json(settings, "members", path, capsys)
    assert report["read"] == 3 and [(r["line"], r["reason"]) for r in report["rejects"]] == [(6, "missing member_no")]
    assert members(engine)["M1"]["name"] == "王\n芳"


def test_mapping_by_config_and_by_flag(db_url: str, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(write_config(tmp_path, db_url, """
        [import.members.columns]
        member_no = "卡号X"
        name = "客户称呼"
        phone = "没有这一列"
    """))
    path = write_csv(tmp_path / "members.csv", [["卡号X", "客户称呼", "昵称", "姓名"], ["C1", "王芳", "芳芳", "王芳芳"]])
    report = run_json(settings, "members", path, capsys)
    assert report["columns"] == {"member_no": "卡号X", "name": "客户称呼"}  # phone: not in this file, not set
    assert members(engine)["C1"]["name"] == "王芳"

    report = run_json(settings, "members", path, capsys, columns={"name": "昵称"})  # the flag wins
    assert report["columns"]["name"] == "昵称" and report["updated"] == 1
    assert members(engine)["C1"]["name"] == "芳芳"


def test_unknown_field_in_config_is_a_config_error(db_url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path, db_url, """
            [import.orders.columns]
            price = "金额"
        """))
    assert caught.value.problems == [
        f"{tmp_path / 'siyu.toml'}: import.orders.columns: unknown field 'price' "
        "(fields: order_no, member_no, amount, ordered_at, store)"
    ]


def test_file_and_mapping_errors_exit_1_and_write_nothing(
    engine: Engine, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import_members_for_orders(settings, tmp_path, capsys)
    path = write_csv(tmp_path / "orders.csv", [["订单号", "会员号", "下单时间"], ["SO1", "M001", "2026-11-01 10:00"]])
    assert import_command(settings, "orders", path, {}, True, False) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "missing column for amount (looked for 'amount' / '金额'" in captured.err
    assert "--column amount=HEADER" in captured.err and "The file's columns: '订单号', '会员号', '下单时间'" in captured.err

    assert import_command(settings, "orders", path, {"amount": "钱"}, False, False) == 1
    assert "amount (column '钱', from --column amount=…)" in capsys.readouterr().err
    assert import_command(settings, "orders", path, {"price": "钱"}, False, False) == 1
    assert "unknown field 'price' in --column" in capsys.readouterr().err
    assert import_command(settings, "orders", tmp_path / "missing.csv", {}, False, False) == 1
    assert "missing.csv: no such file" in capsys.readouterr().err
    (tmp_path / "empty.csv").write_bytes(b"")
    assert import_command(settings, "orders", tmp_path / "empty.csv", {}, False, False) == 1
    assert "empty file" in capsys.readouterr().err
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    assert import_command(settings, "orders", tmp_path / "old.xls", {}, False, False) == 1
    assert "save the sheet as .xlsx or CSV" in capsys.readouterr().err
    assert orders(engine) == {} and not (tmp_path / "orders.csv.rejects.csv").exists()


def test_gb18030_csv_from_chinese_excel(
    engine: Engine, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "members.csv", MEMBER_ROWS, encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        path.read_text(encoding="utf-8")
    report = run_json(settings, "members", path, capsys)
    assert report["encoding"] == "gb18030" and report["imported"] == 6
    assert members(engine)["M002"]["name"] == "李娜"
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeff会员号,姓名\nM100,王芳\n".encode())
    assert run_json(settings, "members", bom, capsys)["columns"] == {"member_no": "会员号", "name": "姓名"}


def test_dry_run_checks_every_row_and_writes_nothing(
    engine: Engine, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_json(settings, "members", write_csv(tmp_path / "members.csv", MEMBER_ROWS), capsys, dry_run=True)
    assert (report["dry_run"], report["imported"], report["rejected"]) == (True, 6, 0)
    assert members(engine) == {}


def test_the_parser_wires_the_import_flags() -> None:
    args = siyu_parser().parse_args(["import", "orders", "o.csv", "--column", "amount=实收", "--column", "store = 店",
                                     "--dry-run", "--json", "--config", "x.toml"])
    assert (args.command, args.import_kind, args.file) == ("import", "orders", Path("o.csv"))
    assert (dict(args.column), args.dry_run, args.json, args.config) == ({"amount": "实收", "store": "店"}, True, True,
                                                                          "x.toml")
    with pytest.raises(SystemExit):
        siyu_parser().parse_args(["import", "members", "m.csv", "--column", "no-equals-sign"])


def test_referrers_later_in_the_file_across_chunks(
    engine: Engine, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_run, "CHUNK_ROWS", 1)
    path = write_csv(tmp_path / "members.csv", [
        ["member_no", "referrer"],
        ["R1", "R3"],  # R3 comes two lines later
        ["R2", "R1"],  # R1 is waiting for R3: R2 waits behind it
        ["R3", ""],
        ["R4", "R5"],  # R5 refers to R4: a ring, both new
        ["R5", "R4"],
        ["R6", "R9"],  # nobody
        ["R7", "R6"],  # refers to a row that is rejected in the end
        ["R1", "R3"],  # R1 again, same values
    ])
    report = run_json(settings, "members", path, capsys)
    assert (report["read"], report["imported"], report["unchanged"], report["rejected"]) == (8, 5, 1, 2)
    assert [(r["line"], r["reason"]) for r in report["rejects"]] == [(7, "unknown referrer R9"), (8, "unknown referrer R6")]
    with (tmp_path / "members.csv.rejects.csv").open(encoding="utf-8-sig") as file:
        assert [line.split(",")[0] for line in file.read().splitlines()] == ["line", "7", "8"]
    found = members(engine)
    assert found["R1"]["referrer_id"] == found["R3"]["id"] and found["R2"]["referrer_id"] == found["R1"]["id"]
    assert found["R4"]["referrer_id"] == found["R5"]["id"] and found["R5"]["referrer_id"] == found["R4"]["id"]
    assert found["R3"]["referrer_id"] is None and "R6" not in found and "R7" not in found
    again = run_json(settings, "members", path, capsys)
    assert (again["imported"], again["updated"], again["unchanged"], again["rejected"]) == (0, 0, 6, 2)
    assert members(engine) == found


def test_the_progress_bar_does_not_change_the_import(
    engine: Engine, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "members.csv", MEMBER_ROWS)
    report = import_run.run_import(settings.storage.url, "members", path, {}, {}, zone=settings.zone, progress=True)
    assert (report.read, report.imported) == (6, 6)
    assert capsys.readouterr().out == ""  # the bar is on stderr


def test_rejected_cells_that_a_spreadsheet_would_run_are_quoted(
    engine: Engine, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 14 item 14: these cells came back verbatim in FILE.rejects.csv, where Excel
    # or WPS would run them as formulas when the operator opens it.
    import_members_for_orders(settings, tmp_path, capsys)
    hostile = ['=HYPERLINK("http://evil","点我")', "@SUM(1+1)", "+1+1", "-2+3", "\t=1", "=cmd|' /C calc'!A0"]
    rows = [ORDER_ROWS[0]] + [[f"X{n}", "M404", "-5", "2026-11-01 14:30", cell] for n, cell in enumerate(hostile)]
    rows.append(["X9", "M404", "-5", "2026-11-01 14:30", "+86"])  # a plain number stays
    report = run_json(settings, "orders", write_csv(tmp_path / "orders.csv", rows), capsys)
    assert report["rejected"] == len(hostile) + 1
    with (tmp_path / "orders.csv.rejects.csv").open(encoding="utf-8-sig", newline="") as file:
        written = list(csv.reader(file))
    assert [row[6] for row in written[1:]] == ["'" + cell for cell in hostile] + ["+86"]
    assert [row[4] for row in written[1:]] == ["-5"] * (len(hostile) + 1)


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        ("100000000.01", "over 100000000 yuan"),
        ("9" * 5000, "over 100000000 yuan"),  # int() would raise past 4,300 digits
        ("1e20", "bad amount"),
        ("NaN", "bad amount"),
        ("Infinity", "bad amount"),
    ],
)
def test_an_order_amount_out_of_bounds_is_a_reject_not_a_crash(
    engine: Engine, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], amount: str, reason: str
) -> None:
    import_members_for_orders(settings, tmp_path, capsys)
    rows = [ORDER_ROWS[0], ["SO1", "M001", amount, "2026-11-01 14:30", ""], ["SO2", "M001", "100000000", "2026-11-01 14:30", ""]]
    report = run_json(settings, "orders", write_csv(tmp_path / "orders.csv", rows), capsys)
    assert (report["imported"], report["rejected"]) == (1, 1)
    assert reason in report["rejects"][0]["reason"]
    assert orders(engine)["SO2"]["amount_cents"] == 10_000_000_000


def test_an_xlsx_that_breaks_mid_file_is_a_clear_error_and_nothing_is_stored(
    engine: Engine, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import zipfile

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["会员编号", "姓名"])
    for n in range(1, 6):
        sheet.append([f"1000{n}", f"会员{n}"])
    good = tmp_path / "good.xlsx"
    workbook.save(good)
    path = tmp_path / "members.xlsx"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":  # row 4's number cell holds no number
                data = data.replace(b'<c r="A4" t="inlineStr"><is><t>10003</t></is></c>', b'<c r="A4" t="n"><v>x</v></c>')
                assert b'<v>x</v>' in data
            target.writestr(item, data)
    capsys.readouterr()
    assert import_command(settings, "members", path, {}, True, False) == 1
    err = capsys.readouterr().err
    assert "row 4: not a readable .xlsx row" in err and "Traceback" not in err
    assert members(engine) == {}
    # Rows are committed a chunk at a time: a break after the first chunk stores nothing either.
    with pytest.raises(ImportFileError, match="row 4: not a readable .xlsx row"):
        import_run.run_import(settings.storage.url, "members", path, {}, {}, zone=settings.zone, chunk_rows=1)
    assert members(engine) == {}
