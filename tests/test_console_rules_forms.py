"""Tag groups, tag rules of every kind and layer schemes, edited as forms in words: each
save is a new version of the `tags` or `layers` section through the same check as the
TOML editor, in force without a restart; a bad value is shown at its field with the form
as typed and no version stored; staff are turned away."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli.main import main
from bot.console.layer_forms import body_of as layer_body, values_of as layer_values
from bot.console.tag_forms import body_of as tag_body, values_of as tag_values
from bot.settings.documents import apply_documents, documents_of
from bot.settings.model import load_settings
from bot.shared.live_config import LIVE
from storage.engine import SessionFactory
from storage.models import CustomerGroup, LayerAssignment, Order, utcnow
from tests.conftest import write_config
from tests.console_harness import ConsoleClient, ConsoleServer
from tests.test_console_settings_forms import field_problems, form_fields, value_of, versions
from tests.test_tagging_flow import say, tags

LogIn = Callable[..., Awaitable[ConsoleClient]]


def typed(page: str, **changes: str) -> dict[str, str]:
    """The settings form as a browser would post it (ticked boxes only), with `changes`
    typed in (a value None unticks or leaves out that field)."""
    fields = dict(form_fields(page)) | changes
    return {k: v for k, v in fields.items() if v is not None and k != "csrf"}


async def test_event_and_behaviour_rules_added_in_the_form_tag_members_without_a_restart(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    async with sessions() as session, session.begin():
        session.add(CustomerGroup(platform="wecom", chat_id="wr-weekend", name="周末烘焙群"))
    ops = await log_in("ops")
    page = await ops.get("/admin/settings/tags")
    # Events and subjects by label: stores and customer groups by name, the event in words.
    assert ">退订营销消息</option>" in page and ">加入客户群</option>" in page
    assert '<option value="jingan">静安店</option>' in page and '<option value="周末烘焙群">周末烘焙群</option>' in page
    assert "interest-bread" not in re.sub(r'<input type="hidden"[^>]*>', "", page.split('data-testid="settings-form"')[1]
                                          .split("</form>")[0])  # the rule's id is no text on screen
    assert value_of(page, "tagrules-0-tag") == "面包控" and value_of(page, "tagrules-0-id") == "interest-bread"
    assert "现在生效：含任一关键词：面包、吐司" in page
    before = await versions(sessions, "tags")
    saved = await ops.post("/admin/settings/tags", typed(
        page, **{"groups-0-name": "订阅", "groups-0-exclusive": "on", "groups-0-expire_days": "",
                 "tagrules-1-kind": "event", "tagrules-1-tag": "已退订", "tagrules-1-group": "订阅",
                 "tagrules-1-event": "opted_out", "tagrules-1-weight": "2", "tagrules-1-enabled": "on",
                 "tagrules-2-kind": "behaviour", "tagrules-2-tag": "爱聊天", "tagrules-2-measure": "messages",
                 "tagrules-2-days": "7", "tagrules-2-count": "2", "tagrules-2-weight": "0", "tagrules-2-enabled": "on"},
    ))
    assert f"已保存为第 {(before or [0])[0] + 1} 版" in saved
    rules = {r.id: r for r in console.server.app[LIVE].settings.tags.rules}
    assert (rules["rule-2"].kind, rules["rule-2"].event, rules["rule-2"].weight) == ("event", "opted_out", 2)
    assert (rules["rule-3"].measure, rules["rule-3"].days, rules["rule-3"].count) == ("messages", 7, 2)
    assert console.server.app[LIVE].settings.tags.groups[0].exclusive
    # The saved form shows the rules again, the event chosen by its label.
    assert re.search(r'<option value="opted_out"[^>]* selected>退订营销消息</option>', saved)

    await say(console.server, sessions, "王芳", "你好", "在吗")
    assert (await tags(sessions, "王芳"))["爱聊天"][:2] == ("rule", "rule-3")
    await say(console.server, sessions, "李娜", "退订")
    assert (await tags(sessions, "李娜"))["已退订"][:2] == ("rule", "rule-2")
    assert "爱聊天" not in await tags(sessions, "李娜")  # one message is not two


async def test_a_rule_switched_off_or_removed_stops_tagging(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    ops = await log_in("ops")
    page = await ops.get("/admin/settings/tags")
    off = await ops.post("/admin/settings/tags", typed(page, **{"tagrules-0-enabled": None}))
    assert "已保存为第" in off and 'name="tagrules-0-enabled" value="on" checked' not in off
    assert console.server.app[LIVE].settings.tags.rules[0].enabled is False
    await say(console.server, sessions, "李娜", "想买面包")
    assert "面包控" not in await tags(sessions, "李娜")
    assert 'data-testid="rule-off"' in await ops.get("/admin/rules")  # kept, and said to be off

    on = await ops.post("/admin/settings/tags", typed(off, **{"tagrules-0-enabled": "on"}))
    await say(console.server, sessions, "李娜", "想买面包")
    assert "面包控" in await tags(sessions, "李娜")

    await ops.post("/admin/settings/tags", typed(on, **{"tagrules-0-remove": "on"}))
    assert console.server.app[LIVE].settings.tags.rules == []


async def test_a_bad_regex_and_a_bad_group_are_refused_at_their_fields(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    ops = await log_in("ops")
    page = await ops.get("/admin/settings/tags")
    before = await versions(sessions, "tags")
    refused = await ops.post("/admin/settings/tags", typed(
        page, **{"tagrules-1-kind": "regex", "tagrules-1-tag": "问地址", "tagrules-1-pattern": "(?<=在)哪",
                 "tagrules-1-weight": "0", "tagrules-1-enabled": "on",
                 "groups-0-name": "口味偏好", "groups-0-expire_days": "0"},
    ), expect=400)
    [problem] = field_problems(refused, "tagrules-1-pattern")
    # siyu check's own words about RE2 after the console's.
    assert problem.startswith("不是有效的正则表达式：") and "invalid perl operator: (?<=" in problem
    await ops.get("/admin/language/en")
    in_english = await ops.post("/admin/settings/tags", typed(
        page, **{"tagrules-1-kind": "regex", "tagrules-1-tag": "问地址", "tagrules-1-pattern": "(?<=在)哪"}), expect=400)
    assert field_problems(in_english, "tagrules-1-pattern")[0].startswith("Not a valid regular expression: ")
    assert "Opted out of marketing</option>" in in_english and "Which event" in in_english  # the form in English too
    await ops.get("/admin/language/zh")
    assert field_problems(refused, "groups-0-expire_days") == ["不能小于 1"]
    assert value_of(refused, "tagrules-1-pattern") == "(?<=在)哪" and value_of(refused, "tagrules-1-tag") == "问地址"
    assert await versions(sessions, "tags") == before
    assert len(console.server.app[LIVE].settings.tags.rules) == 1

    # An event rule without its event, a behaviour rule without its days: at those fields.
    refused = await ops.post("/admin/settings/tags", typed(
        page, **{"tagrules-1-kind": "event", "tagrules-1-tag": "进群", "tagrules-1-event": "",
                 "tagrules-2-kind": "behaviour", "tagrules-2-tag": "沉默", "tagrules-2-measure": "silent",
                 "tagrules-2-days": ""},
    ), expect=400)
    assert field_problems(refused, "tagrules-1-event") == ["必须填写"]
    assert field_problems(refused, "tagrules-2-days") == ["必须填写"]
    assert await versions(sessions, "tags") == before


async def _recompute(config: Path) -> None:
    assert await asyncio.to_thread(main, ["layers", "recompute", "--config", str(config)]) == 0


async def _layer_of(sessions: SessionFactory, member: int, scheme: str) -> str:
    async with sessions() as session:
        return (await session.execute(select(LayerAssignment.layer).where(
            LayerAssignment.member_id == member, LayerAssignment.scheme == scheme))).scalar_one()


async def test_a_layer_condition_changed_in_words_moves_members_on_the_next_recompute(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory, tmp_path: Path
) -> None:
    wangfang = console.brand.members["王芳"]
    async with sessions() as session, session.begin():
        session.add(Order(order_no="A-1", member_id=wangfang, amount_cents=8800, ordered_at=utcnow()))
    config = tmp_path / "siyu.toml"
    await _recompute(config)
    assert await _layer_of(sessions, wangfang, "evolution") == "target"

    ops = await log_in("ops")
    page = await ops.get("/admin/settings/layers")
    # Evolution's third layer (VIP): paid member and F score ≥ 4, in words.
    assert value_of(page, "layer-2-2-label") == "VIP" and value_of(page, "layer-2-2-name") == "vip"
    assert '<option value="paid_member" selected>是付费会员</option>' in page
    assert '<option value="f_score" selected>F 分（下单频次，1–5）</option>' in page
    assert value_of(page, "cond-2-2-1-value") == "4"
    assert "现在生效：是付费会员，且F 分（下单频次） ≥ 4" in page  # and what is in force, in a sentence
    before = await versions(sessions, "layers")
    saved = await ops.post("/admin/settings/layers", typed(
        page, **{"layer-2-2-label": "常客", "cond-2-2-0-remove": "on",
                 "cond-2-2-1-metric": "frequency", "cond-2-2-1-op": ">=", "cond-2-2-1-value": "1"},
    ))
    assert f"已保存为第 {(before or [0])[0] + 1} 版" in saved
    scheme = console.server.app[LIVE].settings.layers.schemes[2]
    assert (scheme.layers[2].name, scheme.layers[2].label, scheme.layers[2].when) == ("vip", "常客", {"frequency": ">= 1"})
    assert "常客" in await ops.get("/admin/rules")

    await _recompute(config)  # no new order: only the changed conditions move her
    assert await _layer_of(sessions, wangfang, "evolution") == "vip"


async def test_a_bad_condition_is_refused_at_its_value_and_layers_reorder(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ops = await log_in("ops")
    page = await ops.get("/admin/settings/layers")
    before = await versions(sessions, "layers")
    refused = await ops.post("/admin/settings/layers", typed(page, **{"cond-2-2-1-value": "很多"}), expect=400)
    assert field_problems(refused, "cond-2-2-1-value")  # the checker's words, at the value
    assert value_of(refused, "cond-2-2-1-value") == "很多"
    refused = await ops.post("/admin/settings/layers", typed(
        page, **{"cond-2-2-2-metric": "interactions", "cond-2-2-2-days": "", "cond-2-2-2-value": "3"}), expect=400)
    assert field_problems(refused, "cond-2-2-2-days") == ["必须填写：1 到 9999 天"]
    assert await versions(sessions, "layers") == before

    # Moving 付费会员 (4th) above VIP (3rd): the order the scheme is read in.
    await ops.post("/admin/settings/layers", typed(page, **{"layer-2-3-order": "2.5"}))
    order = [layer.name for layer in console.server.app[LIVE].settings.layers.schemes[2].layers]
    assert order == ["partner", "referrer", "paying", "vip", "target"]
    capsys.readouterr()
    show = ["layers", "show", "--scheme", "evolution", "--json", "--config", str(tmp_path / "siyu.toml")]
    assert await asyncio.to_thread(main, show) == 0  # the command line reads the scheme as the console holds it
    assert [p["layer"] for p in json.loads(capsys.readouterr().out)["pyramid"]][:4] == order[:4]


def test_the_forms_round_trip_the_sections_they_show(tmp_path: Path) -> None:
    """Saved unchanged, each form makes the section it was shown from."""
    settings = load_settings(write_config(tmp_path, "sqlite:///x.db", """
        [[tags.rules]]
        id = "vip-group"
        kind = "event"
        event = "joined_group"
        subject = "VIP 群"
        tag = "VIP"
        topic = "vip"
        [[tags.rules]]
        id = "quiet"
        kind = "behaviour"
        measure = "silent"
        days = 30
        tag = "沉默"
        enabled = false
        [[tags.groups]]
        name = "口味偏好"
        expire_days = 90
    """))
    held = documents_of(settings)
    body, _rows, problems = tag_body(tag_values(settings), held["tags"])
    assert not problems and apply_documents(settings, {"tags": body}).tags == settings.tags
    body, _rows, problems = layer_body(layer_values(settings), held["layers"])
    assert not problems and apply_documents(settings, {"layers": body}).layers == settings.layers


async def test_staff_cannot_open_or_save_the_rule_forms_nor_a_forged_post(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    staff = await log_in("liuyang")
    for name in ("tags", "layers"):
        await staff.get(f"/admin/settings/{name}", expect=403)
        await staff.post(f"/admin/settings/{name}", {"groups-0-name": "x"}, expect=403)
    ops = await log_in("ops")
    page = await ops.get("/admin/settings/tags")
    before = await versions(sessions, "tags")
    forged = typed(page, **{"groups-0-name": "伪造"}) | {"csrf": "guessed"}
    assert "表单已过期" in await ops.post("/admin/settings/tags", forged, expect=403, csrf=False)
    assert await versions(sessions, "tags") == before


def test_a_layer_added_and_one_removed_in_the_form(tmp_path: Path) -> None:
    """A new layer gets a name of its own (the label is what operators see); a layer
    ticked for removal goes; the other schemes and the RFM settings are kept."""
    settings = load_settings(write_config(tmp_path, "sqlite:///x.db", """
        [layers.rfm]
        window_days = 180
    """))
    values = layer_values(settings)
    lifecycle = values["schemes"][1]["layers"]
    lifecycle[0]["remove"] = "on"  # 新客 goes
    lifecycle.append({"name": "", "at": "", "label": "回流", "order": "2.5", "remove": "", "tags_all": "",
                      "tags_any": "", "tags_none": "",
                      "conditions": [{"metric": "interactions", "days": "7", "op": ">=", "value": "3", "remove": ""}]})
    body, _rows, problems = layer_body(values, documents_of(settings)["layers"])
    assert not problems
    again = apply_documents(settings, {"layers": body}).layers
    layers = [(layer.name, layer.label, layer.when) for layer in again.schemes[1].layers]
    assert layers[:2] == [("active", "活跃", {"interactions_30d": ">= 1"}), ("layer-5", "回流", {"interactions_7d": ">= 3"})]
    assert "new" not in {name for name, _label, _when in layers}
    assert again.rfm.window_days == 180 and again.schemes[0] == settings.layers.schemes[0]


def test_half_filled_rows_are_refused_not_dropped(tmp_path: Path) -> None:
    """A group ticked exclusive without its name, a new layer with conditions but no
    label: said at the field, not silently left out."""
    settings = load_settings(write_config(tmp_path, "sqlite:///x.db"))
    values = tag_values(settings)
    values["groups"].append({"name": "", "exclusive": "on", "expire_days": ""})
    body, rows, problems = tag_body(values, documents_of(settings)["tags"])
    assert body["groups"] == [{"name": "", "exclusive": True}] and rows["groups"] == {"0": 0}
    values = layer_values(settings)
    values["schemes"][0]["layers"].append({
        "name": "", "at": "", "label": "", "order": "9", "remove": "", "tags_all": "", "tags_any": "", "tags_none": "",
        "conditions": [{"metric": "frequency", "days": "", "op": ">=", "value": "9", "remove": ""}]})
    _body, _rows, problems = layer_body(values, documents_of(settings)["layers"])
    assert problems == ["layer-0-6-label: required"]


def test_two_new_layers_get_names_of_their_own_and_a_metric_twice_is_refused(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, "sqlite:///x.db"))
    values = layer_values(settings)
    new = {"name": "", "at": "", "order": "9", "remove": "", "tags_all": "", "tags_any": "", "tags_none": "",
           "conditions": []}
    values["schemes"][1]["layers"] += [new | {"label": "甲"}, new | {"label": "乙"}]
    body, _rows, problems = layer_body(values, documents_of(settings)["layers"])
    assert not problems and [e["name"] for e in body["schemes"][1]["layers"][-2:]] == ["layer-5", "layer-6"]
    twice = {"metric": "frequency", "days": "", "op": ">=", "value": "1", "remove": ""}
    values["schemes"][0]["layers"][0]["conditions"] += [twice, twice]
    _body, _rows, problems = layer_body(values, documents_of(settings)["layers"])
    assert problems == ["cond-0-0-4-metric: used twice in one layer"]
