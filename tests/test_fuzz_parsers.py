"""Hypothesis fuzzes every parser of outside input (issue 14): any input gets a result
or the parser's own refusal, never another exception and never a stall. Examples are
bounded (`max_examples`, a per-example `deadline`) so the file runs in CI in seconds."""

from __future__ import annotations

import os
import tempfile
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.imports import rows
from bot.imports.cells import safe_cell
from bot.platforms.oa.updates import to_update as oa_update
from bot.platforms.sandbox.orders import BadOrder, parse_order
from bot.platforms.sandbox.routes import BadMessage, parse_message
from bot.platforms.wecom.crypto import CallbackCrypto, CallbackError
from bot.platforms.wecom.updates import to_update as wecom_update
from bot.platforms.wecom.xml import MalformedXml, parse_fields
from bot.shared import strict_json
from bot.shared.params import whole_number
from content_templates.renderer import Renderer, RenderError
from handlers.matching import MessageMatcher, valid_pattern
from handlers.rules import RegexRule
from scheduler.cron import cron_problem

# SIYU_FUZZ_EXAMPLES raises the count for a long local run; CI keeps the default.
EXAMPLES = int(os.environ.get("SIYU_FUZZ_EXAMPLES", "150"))
FAST = settings(max_examples=EXAMPLES, deadline=2000, database=None, suppress_health_check=[HealthCheck.too_slow])
ZONE = ZoneInfo("Asia/Shanghai")
TOKEN, AES_KEY, CORP = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7"

# Text that looks like the things it feeds: XML, JSON, numbers, dates, cron and Jinja
# pieces, mixed with anything at all.
XMLISH = st.lists(st.sampled_from(["<xml>", "</xml>", "<MsgType>", "</MsgType>", "<Content>", "</Content>",
                                   "<![CDATA[", "]]>", "<!DOCTYPE x [", "<!ENTITY e 'x'>", "&e;", "&amp;",
                                   "<FromUserName>", "</FromUserName>", "<CreateTime>", "</CreateTime>",
                                   "<Event>", "</Event>", "<MsgId>", "</MsgId>", "text", "event", "9" * 25,
                                   "²", "\x00", "\ud800", "退订", "<a>", "</a>", " ", "\n"]), max_size=30).map("".join)
NUMBERISH = st.lists(st.sampled_from(list("0123456789.,-+eE¥￥元 ²٣") + ["NaN", "Infinity", "1e999999", "9" * 30]),
                     max_size=20).map("".join)
CRONISH = st.lists(st.sampled_from(list("0123456789*/-, ") + ["L", "W", "#", "?", "jan", "mon", "99999999999"]),
                   max_size=30).map("".join)
JINJAISH = st.lists(st.sampled_from(["{{", "}}", "{%", "%}", "{#", "#}", " ", "1", "0", "9", "10", "**", "*", "/",
                                    "//", "%", "(", ")", "'x'", "member", ".name", "|", "int", "float", "range",
                                    "for", "in", "endfor", "if", "endif", "set", "=", "1e308", "-", "[", "]", ","]),
                     max_size=25).map("".join)
JSONISH = st.lists(st.sampled_from(['{', '}', '[', ']', '"member"', '"text"', '"amount"', '"order_no"', ':', ',',
                                    '"a"', '1', '1e999999', '-', 'NaN', 'Infinity', 'true', 'null', '"\\ud800"',
                                    '"\\u0000"', '0.001', '"A-1"', '"1e20"', ' ']), max_size=40).map("".join)


@FAST
@given(st.one_of(XMLISH, st.text(max_size=300), st.binary(max_size=300)))
def test_xml_fields_or_malformed(body: str | bytes) -> None:
    try:
        fields = parse_fields(body)
    except MalformedXml:
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())


@FAST
@given(st.dictionaries(st.sampled_from(["MsgType", "Event", "ChangeType", "FromUserName", "ToUserName", "CreateTime",
                                        "MsgId", "Content", "UserID", "ExternalUserID", "ChatId", "UpdateDetail",
                                        "MemChangeList", "OpenKfId", "Token", "TagType", "Id", "WelcomeCode", "State",
                                        "EventKey"]),
                       st.one_of(st.text(max_size=40), NUMBERISH), max_size=12))
def test_updates_from_any_decrypted_fields(fields: dict[str, str]) -> None:
    for convert in (wecom_update, oa_update):
        try:
            update = convert(fields)
        except (ValueError, KeyError):  # what the routes turn into a 400
            continue
        assert update.key and len(update.key) <= 191


@FAST
@given(st.text(max_size=80), st.text(max_size=20), st.text(max_size=20), st.one_of(st.text(max_size=400), XMLISH))
def test_envelope_decryption_refuses_cleanly(signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP)
    try:
        crypto.unwrap(signature, timestamp, nonce, encrypted)
    except CallbackError:
        pass


@FAST
@given(st.one_of(JSONISH, st.binary(max_size=200), st.text(max_size=200)))
def test_sandbox_json_is_a_value_or_bad_json(raw: str | bytes) -> None:
    try:
        body = strict_json.loads(raw)
    except strict_json.BadJson:
        return
    for parse, refusal in ((parse_message, BadMessage), (parse_order, BadOrder)):
        try:
            parse(body)
        except refusal:
            pass


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.decimals() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@FAST
@given(st.fixed_dictionaries({"member": st.one_of(st.text(max_size=70), JSON_VALUES),
                              "order_no": st.one_of(st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True), JSON_VALUES),
                              "amount": st.one_of(NUMBERISH, JSON_VALUES, st.decimals(), st.floats()),
                              "store": st.one_of(st.text(max_size=70), JSON_VALUES)}))
def test_an_order_is_parsed_or_refused(body: dict[str, object]) -> None:
    try:
        update = parse_order(body)
    except BadOrder:
        return
    cents = int(update.detail["amount_cents"])
    assert 0 <= cents <= 100_000_000 * 100


@FAST
@given(st.one_of(NUMBERISH, st.text(max_size=40)))
def test_import_cells_are_values_or_row_errors(text: str) -> None:
    for parse in (rows.parse_cents, lambda t: rows.parse_birthday(t, None, date(2026, 12, 2)),
                  lambda t: rows.parse_date(t, "joined"), lambda t: rows.parse_bool(t, "paid"),
                  lambda t: rows.parse_time(t, ZONE), lambda t: rows.text_value(t, "name", 64),
                  rows.parse_calendar):
        try:
            parse(text)
        except rows.RowError:
            pass
    if isinstance(cell := safe_cell(text), str) and cell != text:
        assert cell == "'" + text


@FAST
@given(st.one_of(CRONISH, st.text(max_size=40)))
def test_cron_lines_are_accepted_or_named(line: str) -> None:
    assert cron_problem(line, ZONE) is None or "cron" in (cron_problem(line, ZONE) or "")


@FAST
@given(st.one_of(st.text(max_size=30), st.from_regex(r"[a-z\\()+*?|{}\[\]0-9,^$.]{0,20}", fullmatch=True)),
       st.text(max_size=200))
def test_any_regex_rule_is_refused_or_matches_in_bounded_time(pattern: str, message: str) -> None:
    if valid_pattern(pattern) is None:
        MessageMatcher([RegexRule(id="r", tag="t", pattern=pattern)]).matching(message * 20)


_TEMPLATES = Path(tempfile.mkdtemp(prefix="siyu-fuzz-templates-"))


@FAST
@given(st.one_of(JINJAISH, st.text(max_size=60)))
def test_operator_templates_render_or_fail_with_render_error(body: str) -> None:
    path = _TEMPLATES / "t.j2"
    path.write_text(body, encoding="utf-8", errors="surrogatepass")
    renderer = Renderer([_TEMPLATES])  # fresh: Jinja caches templates by name
    try:
        assert isinstance(renderer.render("t.j2", {"member": {"name": "王芳"}}), str)
    except RenderError:
        pass


@FAST
@given(st.one_of(NUMBERISH, st.text(max_size=30)))
def test_whole_numbers_from_urls(text: str) -> None:
    number = whole_number(text)
    assert number is None or 0 <= number < 2**63
