"""The settings operators touch most, edited as forms in words: each form saves a new
version of its section through the same check as the TOML editor, the change reaches the
persona at once, a bad value is shown at its field (the typed form kept, no version
stored), and staff are turned away."""

from __future__ import annotations

import html
from html.parser import HTMLParser
import re
from collections.abc import Awaitable, Callable
from datetime import time
from pathlib import Path

from sqlalchemy import select

from bot.console.section_forms import body_of, values_of
from bot.settings.care_plan import care_plan
from bot.settings.documents import apply_documents, documents_of
from bot.settings.model import load_settings
from bot.shared.live_config import LIVE
from storage.config_docs import history
from storage.engine import SessionFactory
from storage.models import Member, StaffTask
from tests.conftest import write_config
from tests.console_harness import ConsoleClient, ConsoleServer
from tests.test_replies_flow import replies_to
from tests.test_tagging_flow import say

LogIn = Callable[..., Awaitable[ConsoleClient]]


def field_problems(page: str, field: str) -> list[str]:
    """The problems listed under one form field."""
    found = re.search(rf'data-testid="problems-{re.escape(field)}">(.*?)</ul>', page, re.S)
    assert found, f"no problem list for {field}"
    return [html.unescape(p) for p in re.findall(r"<li>(.*?)</li>", found.group(1))]


def value_of(page: str, field: str) -> str:
    """The value a form field shows (an input's value or a textarea's text)."""
    found = re.search(rf'<input[^>]*name="{re.escape(field)}" value="([^"]*)"', page) or \
        re.search(rf'<textarea name="{re.escape(field)}"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, f"no field {field}"
    return html.unescape(found.group(1))


async def versions(sessions: SessionFactory, name: str) -> list[int]:
    async with sessions() as session:
        return [v.version for v in await history(session, name)]


async def test_the_persona_form_saves_a_version_the_persona_speaks_with(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    ops = await log_in("ops")
    page = await ops.get("/admin/settings/persona")
    assert value_of(page, "name") == "小禾" and value_of(page, "tips-0-tag") == "面包控"
    assert 'href="/admin/settings/persona?mode=toml"' in page  # the TOML stays, as expert mode
    before = await versions(sessions, "persona")
    saved = await ops.post("/admin/settings/persona", {
        "name": "小麦", "title": "禾麦烘焙的面包师", "signature": "小麦 · 禾麦烘焙", "default_line": "想聊面包随时找我。",
        "tips-0-tag": "面包控", "tips-0-text": "法棍当天吃最香", "tips-1-tag": "", "tips-1-text": "",
        "note": "换人设",
    })
    assert f"已保存为第 {before[0] + 1} 版" in saved and value_of(saved, "name") == "小麦"
    async with sessions() as session:
        newest = (await history(session, "persona"))[0]
    assert (newest.source, newest.author, newest.note) == ("console", "ops", "换人设")
    assert newest.body["tips"] == {"面包控": "法棍当天吃最香"}

    await say(console.server, sessions, "李娜", "想买全麦面包")
    [reply] = await replies_to(sessions, "李娜")
    assert "我是小麦" in reply and "法棍当天吃最香" in reply and reply.endswith("— 小麦 · 禾麦烘焙")

    # A tip row ticked for removal goes; a blank name is refused at its field, the typing kept.
    refused = await ops.post("/admin/settings/persona", {
        "name": " ", "title": "换了的头衔", "signature": "", "default_line": "",
        "tips-0-tag": "面包控", "tips-0-text": "法棍当天吃最香", "tips-0-remove": "on",
    }, expect=400)
    assert field_problems(refused, "name") == ["不能为空"]
    assert value_of(refused, "title") == "换了的头衔" and 'name="tips-0-remove" value="on" checked' in refused
    assert await versions(sessions, "persona") == [before[0] + 1, *before]
    assert console.server.app[LIVE].settings.persona.title == "禾麦烘焙的面包师"


async def test_faq_rows_are_added_changed_and_answered_by_the_persona(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    ops = await log_in("ops")
    page = await ops.get("/admin/settings/replies")
    assert 'data-testid="faq-0-keywords"' in page  # the empty row that adds a question
    texts = await versions(sessions, "templates")
    saved = await ops.post("/admin/settings/replies", {
        "max_replies": "3", "per_minutes": "10",
        "faq-0-id": "", "faq-0-keywords": "几点开门、营业时间", "faq-0-match": "any",
        "faq-0-answer": "{{ persona.name }}：门店每天 8:00 开门。",
    })
    assert "已保存为第" in saved and f"回答的文字已保存为消息文案第 {texts[0] + 1} 版" in saved
    entry = console.server.app[LIVE].settings.replies.faq[0]
    assert (entry.id, entry.keywords, entry.template) == ("faq-1", ["几点开门", "营业时间"], "faq/faq-1.txt.j2")
    await say(console.server, sessions, "王芳", "请问几点开门？")
    assert await replies_to(sessions, "王芳") == ["小禾：门店每天 8:00 开门。"]

    # Changing only the answer is a new version of the texts; the persona answers with it.
    assert value_of(saved, "faq-0-answer") == "{{ persona.name }}：门店每天 8:00 开门。"
    changed = await ops.post("/admin/settings/replies", {
        "max_replies": "3", "per_minutes": "10",
        "faq-0-id": "faq-1", "faq-0-keywords": "几点开门、营业时间", "faq-0-match": "any",
        "faq-0-answer": "{{ persona.name }}：冬天起每天 9:00 开门。",
        "faq-1-id": "", "faq-1-keywords": "", "faq-1-answer": "",
    })
    assert f"回答的文字已保存为消息文案第 {texts[0] + 2} 版" in changed
    assert "已保存为第" not in changed  # the questions themselves did not change
    await say(console.server, sessions, "赵雪", "营业时间是？")
    assert await replies_to(sessions, "赵雪") == ["小禾：冬天起每天 9:00 开门。"]

    # What the form does not show (an entry's pattern, set in expert mode) is kept by it.
    await ops.post("/admin/settings/replies", {"toml": '[[faq]]\nid = "faq-1"\nkeywords = ["营业时间"]\n'
                                                       'pattern = "几点(开|关)门"\ntemplate = "faq/faq-1.txt.j2"\n'})
    page = await ops.get("/admin/settings/replies")
    assert "几点(开|关)门" in page and value_of(page, "faq-0-keywords") == "营业时间"
    await ops.post("/admin/settings/replies", {"max_replies": "3", "per_minutes": "10", "faq-0-id": "faq-1",
                                               "faq-0-keywords": "营业时间、开门", "faq-0-answer": value_of(page, "faq-0-answer")})
    entry = console.server.app[LIVE].settings.replies.faq[0]
    assert (entry.keywords, entry.pattern) == (["营业时间", "开门"], "几点(开|关)门")


async def test_a_bad_faq_row_is_shown_at_its_field_and_nothing_is_stored(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    ops = await log_in("ops")
    before = (await versions(sessions, "replies"), await versions(sessions, "templates"))
    # A row ticked for removal comes first: problems still land on the rows they are about.
    typed = {"max_replies": "3", "per_minutes": "10",
             "faq-0-id": "", "faq-0-keywords": "会员卡", "faq-0-answer": "不要了", "faq-0-remove": "on",
             "faq-1-id": "", "faq-1-keywords": "停车", "faq-1-answer": "{{ memeber.name }}，门口可以停车",
             "faq-2-id": "", "faq-2-keywords": "外卖", "faq-2-answer": ""}
    refused = await ops.post("/admin/settings/replies", typed, expect=400)
    assert field_problems(refused, "faq-2-answer") == ["必须填写"]
    assert value_of(refused, "faq-1-answer") == "{{ memeber.name }}，门口可以停车"  # nothing typed is lost
    assert value_of(refused, "faq-0-keywords") == "会员卡" and 'name="faq-0-remove" value="on" checked' in refused
    typed["faq-2-answer"] = "暂时没有外卖"
    refused = await ops.post("/admin/settings/replies", typed, expect=400)
    assert field_problems(refused, "faq-1-answer") == ["用了不认识的变量「memeber」"]
    assert field_problems(refused, "faq-2-answer") == [] and field_problems(refused, "faq-0-answer") == []
    refused = await ops.post("/admin/settings/replies", typed | {"faq-1-answer": "门口可以停车", "per_minutes": "十",
                                                                 "faq-2-keywords": "、"}, expect=400)
    assert field_problems(refused, "per_minutes") == ["请填整数"]
    assert field_problems(refused, "faq-2-keywords") == ["请填写问题里的词"]
    assert (await versions(sessions, "replies"), await versions(sessions, "templates")) == before
    english = await ops.get("/admin/language/en?next=/admin/settings/replies")
    assert "Words of the question" in english
    refused = await ops.post("/admin/settings/replies", typed, expect=400)
    assert field_problems(refused, "faq-1-answer") == ["unknown variable “memeber”"]


async def test_hand_off_and_opt_out_words_take_effect_without_a_restart(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    ops = await log_in("ops")
    page = await ops.get("/admin/settings/handoff")
    assert "投诉" in value_of(page, "keywords") and ">刘洋 · 静安店</option>" in page  # staff by name, not userid
    saved = await ops.post("/admin/settings/handoff", {
        "keywords": "投诉\r\n找店长", "angry_words": "气死", "question_markers": "?\n？\n吗",
        "unanswered": "never", "last_messages": "10", "default_staff": "chenjing",
    })
    assert "已保存为第" in saved and 'value="chenjing" selected' in saved
    handoff = console.server.app[LIVE].settings.handoff
    assert (handoff.keywords, handoff.unanswered, handoff.default_staff) == (["投诉", "找店长"], "never", "chenjing")
    await say(console.server, sessions, "李娜", "我想找店长聊聊")
    async with sessions() as session:
        kinds = list((await session.execute(select(StaffTask.kind).where(StaffTask.kind == "handoff_reply"))).scalars())
    assert kinds == ["handoff_reply"]

    bad = await ops.post("/admin/settings/handoff", {"keywords": "投诉", "angry_words": "", "question_markers": "?",
                                                     "unanswered": "never", "last_messages": "99"}, expect=400)
    assert field_problems(bad, "last_messages") == ["不能大于 50"] and value_of(bad, "last_messages") == "99"

    before = await versions(sessions, "opt_out")
    saved = await ops.post("/admin/settings/opt_out", {"stop_words": "退订\n别发了", "resume_words": "订阅"})
    assert f"已保存为第 {before[0] + 1} 版" in saved
    await say(console.server, sessions, "王芳", "别发了")
    async with sessions() as session:
        member = await session.get(Member, console.brand.members["王芳"])
    assert member is not None and member.opted_out_at is not None
    empty = await ops.post("/admin/settings/opt_out", {"stop_words": " \n", "resume_words": "订阅"}, expect=400)
    assert field_problems(empty, "stop_words") and await versions(sessions, "opt_out") == [before[0] + 1, *before]
    again = await ops.post("/admin/settings/opt_out", {"stop_words": "退订、别发了", "resume_words": "订阅"})
    assert "内容没有变化" in again


async def test_the_delivery_policy_in_words_and_by_layer_label(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    ops = await log_in("ops")
    page = await ops.get("/admin/settings/delivery")
    assert 'data-layer="super"' in page and "超级用户" in page and ">价值分层</option>" in page
    rows = dict(re.findall(r'name="caps-(\d+)-layer" value="([^"]+)"', page))
    row = {layer: n for n, layer in rows.items()}
    form = {"quiet_hours": "on", "quiet_start": "22:00", "quiet_end": "07:00", "cap_scheme": "value",
            "default_weekly_cap": "1"} | {f"caps-{n}-layer": layer for n, layer in rows.items()} | \
        {f"caps-{n}-cap": "" for n in rows} | {f"caps-{row['super']}-cap": "5", f"caps-{row['core']}-cap": "3"}
    saved = await ops.post("/admin/settings/delivery", form)
    assert "已保存为第" in saved
    words = re.search(r'data-testid="delivery-in-words">(.*?)</p>', saved, re.S)
    assert words and "每天 22:00 到 07:00 不发营销和关怀消息" in words.group(1)
    assert "超级用户每 7 天最多 5 条" in words.group(1) and "其余会员每 7 天最多 1 条" in words.group(1)
    policy = console.server.app[LIVE].delivery
    assert policy.quiet is not None and (policy.quiet.start, policy.quiet.end) == (time(22), time(7))
    assert policy.weekly_caps == {"super": 5, "core": 3} and policy.default_cap == 1

    before = await versions(sessions, "delivery")
    bad = await ops.post("/admin/settings/delivery", form | {"quiet_start": "25:00", f"caps-{row['core']}-cap": "三"},
                         expect=400)
    assert field_problems(bad, "quiet_start") == ["「25:00」不是 21:30 这样的时间"]
    assert field_problems(bad, f"caps-{row['core']}-cap") == ["请填整数"] and value_of(bad, f"caps-{row['core']}-cap") == "三"
    blank = await ops.post("/admin/settings/delivery", form | {"default_weekly_cap": ""}, expect=400)
    assert field_problems(blank, "default_weekly_cap") == ["必须填写"]
    assert await versions(sessions, "delivery") == before


async def test_the_expert_mode_keeps_the_toml_editor(console: ConsoleServer, log_in: LogIn) -> None:
    ops = await log_in("ops")
    page = await ops.get("/admin/settings/persona?mode=toml")
    assert 'data-testid="settings-toml"' in page and 'href="/admin/settings/persona"' in page
    saved = await ops.post("/admin/settings/persona", {"toml": 'name = "小穗"\n'})
    assert "已保存为第" in saved and 'data-testid="settings-toml"' in saved
    assert console.server.app[LIVE].settings.persona.name == "小穗"


async def test_staff_cannot_see_or_save_the_forms(console: ConsoleServer, log_in: LogIn) -> None:
    staff = await log_in("liuyang")
    for name in ("persona", "replies", "handoff", "opt_out", "delivery", "care"):
        await staff.get(f"/admin/settings/{name}", expect=403)
    await staff.post("/admin/settings/persona", {"name": "小麦"}, expect=403)
    await staff.post("/admin/settings/handoff", {"keywords": "x"}, expect=403)


class _Fields(HTMLParser):
    """The fields a page's settings form would post as it stands (ticked boxes only)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self._in_form = False
        self._select: str | None = None
        self._area: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._in_form = a.get("data-testid") == "settings-form"
        elif self._in_form and tag == "input" and "name" in a:
            if a.get("type") != "checkbox" or "checked" in a:
                self.fields.append((a["name"], a.get("value", "")))
        elif self._in_form and tag == "select":
            self._select = a.get("name")
        elif self._in_form and tag == "option" and self._select and "selected" in a:
            self.fields.append((self._select, a.get("value", "")))
        elif self._in_form and tag == "textarea":
            self._area = a.get("name")
            self.fields.append((self._area or "", ""))

    def handle_data(self, data: str) -> None:
        if self._area:
            name, text = self.fields[-1]
            self.fields[-1] = (name, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._area = None


def form_fields(page: str) -> list[tuple[str, str]]:
    parser = _Fields()
    parser.feed(page)
    return parser.fields


async def post_fields(client: ConsoleClient, path: str, fields: list[tuple[str, str]], expect: int = 200) -> str:
    data = [(k, v) for k, v in fields if k != "csrf"] + [("csrf", await client.csrf())]
    async with client.http.post(client.base + path, data=data) as response:
        text = await response.text()
        assert response.status == expect, f"POST {path}: {response.status}\n{text[:500]}"
        return text


async def test_care_by_layer_label_with_occasions_and_a_held_out_share(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    ops = await log_in("ops")
    page = await ops.get("/admin/settings/care")
    assert "超级用户（最高层）" in page and ">核心用户</h3>" in page and 'value="core"' in page
    fields = form_fields(page)
    core = next(k.split("-")[1] for k, v in fields if k.endswith("-layer") and v == "core")
    top = next(k.split("-")[1] for k, v in fields if k.endswith("-which") and v == "top")
    assert (f"rules-{top}-occasions", "anniversary") in fields and (f"rules-{core}-own", "on") not in fields
    changed = [(k, v) for k, v in fields if not k.startswith((f"rules-{core}-", f"rules-{top}-holdout"))]
    changed += [(f"rules-{core}-which", "layer"), (f"rules-{core}-layer", "core"), (f"rules-{core}-own", "on"),
                (f"rules-{core}-message", "on"), (f"rules-{core}-occasions", "birthday"),
                (f"rules-{core}-occasions", "festival-中秋"), (f"rules-{core}-holdout", ""), (f"rules-{top}-holdout", "10")]
    before = await versions(sessions, "care")
    saved = await post_fields(ops, "/admin/settings/care", changed)
    assert f"已保存为第 {before[0] + 1} 版" in saved
    care = console.server.app[LIVE].settings.care
    assert care.layers["core"].occasions == ["birthday", "festival-中秋"] and care.layers["core"].message
    assert care.top_layer.holdout == 0.1 and care.top_layer.gift and set(care.layers) == {"core"}
    plan = care_plan(console.server.app[LIVE].settings)  # what the next care scan works with
    assert plan.rule_for("core").covers("festival-中秋") and not plan.rule_for("important").covers("festival-中秋")
    shown = form_fields(saved)
    assert (f"rules-{core}-own", "on") in shown and (f"rules-{core}-occasions", "festival-中秋") in shown

    def but(fields: list[tuple[str, str]], **changes: str) -> list[tuple[str, str]]:
        return [(k, v) for k, v in fields if k not in changes] + list(changes.items())

    refused = await post_fields(ops, "/admin/settings/care", but(shown, **{f"rules-{top}-holdout": "80"}), expect=400)
    assert field_problems(refused, f"rules-{top}-holdout") == ["请填 0 到 50 之间的百分数"]
    assert value_of(refused, f"rules-{top}-holdout") == "80"
    refused = await post_fields(ops, "/admin/settings/care", but(shown, send_time="9点"), expect=400)
    assert field_problems(refused, "send_time") == ["「9点」不是 10:00 这样的时间"] and value_of(refused, "send_time") == "9点"
    assert await versions(sessions, "care") == [before[0] + 1, *before]


def test_the_care_form_keeps_what_the_scan_does_for_the_top_layer(tmp_path: Path) -> None:
    """A top layer given its own entry under care.layers (in TOML) is shown and saved as
    the top layer's rule: the form changes the document, not what members get."""
    settings = load_settings(write_config(tmp_path, "sqlite:///x.db", """
        [care.layers.super]
        message = true
        occasions = ["birthday", "winback"]
    """))
    values = values_of("care", settings, lambda _name: None)
    assert values["rules"][0] | {"holdout": ""} == {"which": "top", "layer": "super", "own": "on", "message": "on",
                                                     "task": "", "gift": "", "occasions": "birthday,winback", "holdout": ""}
    built = body_of("care", values, documents_of(settings)["care"], lambda _name: None)
    assert not built.problems and "super" not in built.body["layers"]
    again = apply_documents(settings, {"care": built.body})
    assert care_plan(again).rule_for("super") == care_plan(settings).rule_for("super")
    assert care_plan(again).rule_for("core") == care_plan(settings).rule_for("core")
