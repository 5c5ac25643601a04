"""Configuration held in the database by version: the documents, `siyu config load` and
`export`, the console's editors (checks by field in Chinese, previews, history, rollback)
and changes reaching every running process without a restart."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from bot.cli.main import main
from bot.console.config_words import spoken
from bot.console.i18n import translator
from bot.settings.documents import apply_documents, documents_of, documents_toml
from bot.settings.model import ConfigError, load_settings
from bot.shared.live_config import LIVE
from bot.web.app import build_app
from storage.config_docs import current_documents, history
from storage.engine import SessionFactory
from tests.conftest import eventually, start_server, write_config
from tests.console_harness import CONSOLE_CONFIG, ConsoleClient, ConsoleServer
from tests.wecom_harness import Corp
from tests.test_tagging_flow import say, tags

LogIn = Callable[..., Awaitable[ConsoleClient]]


# -- documents -------------------------------------------------------------------------------

def test_every_document_reads_back_to_the_same_settings(tmp_path: Path) -> None:
    example = load_settings(Path(__file__).parents[1] / "config.example.toml")
    bodies = documents_of(example)
    assert apply_documents(example, bodies) == example
    text = documents_toml(bodies)
    raw = tomllib.loads(text)
    again = apply_documents(example, {k: (v["texts"] if k == "templates" else v) for k, v in raw.items()})
    assert again == example


def test_a_bad_document_is_refused_naming_its_key(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, "sqlite:///x.db"))
    with pytest.raises(ConfigError) as refused:
        apply_documents(settings, {"delivery": {"quiet_start": "25:00", "colour": "red"}})
    assert sorted(refused.value.problems) == ["delivery.colour: unknown key",
                                              "delivery.quiet_start: '25:00' is not a time like 21:30"]


def test_problems_are_said_by_field_in_the_consoles_language() -> None:
    zh, en = translator("zh"), translator("en")
    layer = 'audience.layers: unknown layer "超级用户" in scheme "value" (its layers: super, loyal)'
    assert spoken(layer, zh).text == "分层方案「value」里没有「超级用户」这一层"
    assert spoken(layer, en).text == 'Layer scheme "value" has no layer "超级用户"'
    found = spoken("text: 'memeber' is undefined", zh)
    assert (found.key, found.text) == ("text", "用了不认识的变量「memeber」")
    assert spoken("delivery.colour: unknown key", zh).text == "没有这个设置项"
    assert spoken("something odd", zh).text == "something odd"  # unknown shapes as the checker said


# -- siyu config load / export ---------------------------------------------------------------

def test_loading_a_file_over_console_edits_asks_first(tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, db_url)
    assert main(["db", "upgrade", "--config", str(config)]) == 0
    assert main(["config", "load", str(config), "--config", str(config)]) == 0
    exported = tmp_path / "held.toml"
    assert main(["config", "export", str(exported), "--config", str(config)]) == 0
    assert 'name = "小禾"' in exported.read_text(encoding="utf-8")

    # An operator changes the persona in the console (here: straight into the database).
    import asyncio

    from bot.cli.sessions import open_sessions
    from storage.config_docs import save_document

    async def console_edit() -> None:
        async with open_sessions(load_settings(config)) as sessions, sessions() as session:
            body = (await current_documents(session))["persona"].body | {"name": "小麦"}
            await save_document(session, "persona", body, source="console", author="ops")
            await session.commit()

    asyncio.run(console_edit())
    edited = tmp_path / "edited.toml"
    edited.write_text(exported.read_text(encoding="utf-8").replace('title = "禾麦烘焙的主理人"', 'title = "店长"'),
                      encoding="utf-8")
    capsys.readouterr()
    assert main(["config", "load", str(edited), "--config", str(config)]) == 1  # no terminal to ask: refused
    assert "persona" in capsys.readouterr().err
    assert main(["config", "export", "--config", str(config)]) == 0
    assert 'name = "小麦"' in capsys.readouterr().out  # the console's edit stands
    assert main(["config", "load", str(edited), "--config", str(config), "--yes"]) == 0
    assert main(["config", "export", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert 'title = "店长"' in out and 'name = "小禾"' in out

    broken = tmp_path / "broken.toml"
    broken.write_text('[persona]\nreply_template = "persona/nope.txt.j2"\n', encoding="utf-8")
    assert main(["config", "load", str(broken), "--config", str(config), "--yes"]) == 1
    assert "persona.reply_template: template 'persona/nope.txt.j2' not found" in capsys.readouterr().err


# -- the console -----------------------------------------------------------------------------

async def test_an_operator_edits_a_section_sees_problems_by_field_and_rolls_back(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    ops = await log_in("ops")
    page = await ops.get("/admin/settings/opt_out")
    assert "退订" in page
    bad = await ops.post("/admin/settings/opt_out", {"toml": 'stop_words = ["退订"]\ncolour = "red"\n'}, expect=400)
    assert "没有这个设置项" in bad and "opt_out.colour" in bad
    bad = await ops.post("/admin/settings/opt_out", {"toml": "stop_words = [\n"}, expect=400)
    assert "TOML 写法有误" in bad
    saved = await ops.post("/admin/settings/opt_out", {"toml": 'stop_words = ["退订", "别发了"]\n', "note": "加一个词"})
    assert "已保存为第 2 版" in saved
    assert console.server.app[LIVE].settings.opt_out.stop_words == ["退订", "别发了"]
    async with sessions() as session:
        versions = await history(session, "opt_out")
    assert [(v.version, v.source, v.author) for v in versions] == [(2, "console", "ops"), (1, "toml", "配置文件")]

    await console.server.post_message("王芳", "别发了")
    async def opted_out() -> bool:
        return "已退订" in await ops.get(f"/admin/members/{console.brand.members['王芳']}") or \
            "退订" in await ops.get(f"/admin/members/{console.brand.members['王芳']}")
    await eventually(opted_out)

    back = await ops.post("/admin/settings/opt_out/rollback", {"version": "1"})
    assert "已恢复为第 1 版的内容（保存为第 3 版）" in back
    assert "别发了" not in console.server.app[LIVE].settings.opt_out.stop_words


async def test_staff_cannot_edit_settings(console: ConsoleServer, log_in: LogIn) -> None:
    staff = await log_in("liuyang")
    await staff.get("/admin/settings", expect=403)
    await staff.post("/admin/settings/opt_out", {"toml": 'stop_words = ["x"]'}, expect=403)


async def test_a_message_text_previews_for_a_member_and_is_checked_before_saving(
    console: ConsoleServer, log_in: LogIn
) -> None:
    ops = await log_in("ops")
    name = "calendar/new_season.txt.j2"
    page = await ops.get(f"/admin/settings/texts?name={name}")
    assert "换季啦" in page and "插入变量" in page
    member = str(console.brand.members["赵雪"])
    shown = await ops.post_json("/admin/settings/texts/preview", {"text": "{{ member.name }}，{{ store.name }}见", "member": member})
    assert shown == {"ok": True, "text": "赵雪，徐汇店见", "problems": []}
    wrong = await ops.post_json("/admin/settings/texts/preview", {"text": "{{ memeber.name }}", "member": member})
    assert wrong["problems"] == ["用了不认识的变量「memeber」"]
    syntax = await ops.post_json("/admin/settings/texts/preview", {"text": "{% if %}", "member": ""})
    assert syntax["problems"][0].startswith("第 1 行写法有误")
    refused = await ops.post("/admin/settings/texts", {"name": name, "text": "{{ memeber.name }}"}, expect=400)
    assert "用了不认识的变量「memeber」" in refused
    saved = await ops.post("/admin/settings/texts", {"name": name, "text": "{{ member.name }}，新品到了"})
    assert "已保存为第" in saved
    renderer = console.server.app[LIVE].renderer
    assert renderer.render(name, {"member": {"name": "李娜"}}) == "李娜，新品到了"
    await ops.post("/admin/settings/texts", {"name": name, "text": "{{ member.name }}，春装到了"})
    versions = re.findall(r'data-testid="rollback-(\d+)"', await ops.get(f"/admin/settings/texts?name={name}"))
    assert versions  # the first edit can be brought back
    await ops.post("/admin/settings/texts/rollback", {"name": name, "version": versions[0]})
    assert console.server.app[LIVE].renderer.render(name, {"member": {"name": "李娜"}}) == "李娜，新品到了"
    page = await ops.post("/admin/settings/texts/rollback", {"name": name, "version": versions[-1]})  # the default
    assert "默认文案" in page and name not in console.server.app[LIVE].settings.templates.texts
    assert "换季啦" in console.server.app[LIVE].renderer.source(name)


async def test_a_tag_rule_changed_in_one_process_tags_in_another_without_a_restart(
    db_url: str, tmp_path: Path, sessions: SessionFactory, log_in: LogIn, console: ConsoleServer
) -> None:
    """A second server on the same database stands for another process: it learns of the
    change by polling, and its dispatcher tags with the new rule."""
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    settings = load_settings(write_config(other_dir, db_url, CONSOLE_CONFIG))
    async with aiohttp.ClientSession() as http:
        other = await start_server(build_app(settings), http)
        try:
            ops = await log_in("ops")
            rules = ('[[rules]]\nid = "interest-bread"\ntag = "面包控"\ngroup = "口味偏好"\nkeywords = ["面包", "吐司"]\n\n'
                     '[[rules]]\nid = "matcha"\ntag = "抹茶控"\nkeywords = ["抹茶"]\n')
            await ops.post("/admin/settings/tags", {"toml": rules})

            async def learned() -> bool:
                return any(r.id == "matcha" for r in other.app[LIVE].settings.tags.rules)

            await eventually(learned)
            await say(other, sessions, "李娜", "有抹茶味的吗")
            assert "抹茶控" in await tags(sessions, "李娜")
        finally:
            await other.stop()


async def test_the_rules_page_changes_and_adds_keyword_rules(console: ConsoleServer, log_in: LogIn,
                                                            sessions: SessionFactory) -> None:
    ops = await log_in("ops")
    page = await ops.get("/admin/rules")
    assert "直接在下面修改或新增" in page and "重启服务生效" not in page
    refused = await ops.post("/admin/rules/keywords", {"id": "", "tag": "", "group": "", "keywords": "抹茶"}, expect=400)
    assert "tags.rules[1].tag" not in refused and "不能为空" in refused
    saved = await ops.post("/admin/rules/keywords", {"id": "", "tag": "抹茶控", "group": "口味偏好", "keywords": "抹茶，宇治"})
    # Named by the tag it gives; its id stays behind the scenes (a tooltip, an attribute).
    assert "已保存规则 抹茶控" in saved and "含任一关键词：抹茶、宇治" in saved
    assert ">rule-2<" not in saved and "规则 ID" not in saved
    await ops.post("/admin/rules/keywords", {"id": "interest-bread", "tag": "面包控", "group": "口味偏好",
                                             "keywords": "面包, 吐司, 贝果"})
    await say(console.server, sessions, "李娜", "想买贝果和宇治抹茶")
    assert {"面包控", "抹茶控"} <= set(await tags(sessions, "李娜"))
    await ops.post("/admin/rules/keywords", {"id": "no-such", "tag": "x", "keywords": "y"}, expect=404)


# -- the calendar form speaks in labels and words ------------------------------------------

def test_a_schedule_in_words_is_a_cron_line_and_back() -> None:
    from bot.console.calendar_form import schedule_cron, schedule_of

    assert schedule_cron({"when": "cron", "repeat": "daily", "time": "8:05"}) == ("5 8 * * *", {})
    assert schedule_cron({"when": "cron", "repeat": "weekly", "time": "10:00", "weekday": "fri"}) == ("0 10 * * fri", {})
    assert schedule_cron({"when": "cron", "repeat": "monthly", "time": "20:30", "monthday": "15"}) == ("30 20 15 * *", {})
    assert schedule_cron({"when": "cron", "repeat": "cron", "cron": "*/5 * * * *"}) == (None, {})
    assert schedule_cron({"when": "at", "repeat": "daily"}) == (None, {})
    _cron, problems = schedule_cron({"when": "cron", "repeat": "monthly", "time": "25:00", "monthday": "32"})
    assert problems == {"time": ["时间请写成 10:00 这样"], "monthday": ["请填 1 到 31 之间的日子"]}
    for line in ("5 8 * * *", "0 10 * * fri", "30 20 15 * *"):
        words = schedule_of(line)
        assert schedule_cron({"when": "cron", "weekday": "", "monthday": "", **words})[0] == line
    assert schedule_of("*/5 * * * *") == {"repeat": "cron"}


def _entry(**fields: str) -> dict[str, str]:
    return {"id": "spring", "title": "春季", "when": "cron", "repeat": "weekly", "time": "10:00", "weekday": "fri",
            "monthday": "1", "cron": "", "at": "", "channel": "oa", "template": "calendar/new_season.txt.j2",
            "message": "", "scheme": "value", "layers": "", "lifecycle": "", "tags": "", "exclude_tags": "",
            "stores": ""} | fields


async def test_the_calendar_form_takes_labels_and_names_and_its_own_message(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    from storage import calendar as store

    ops = await log_in("ops")
    answer = await ops.post_json("/admin/calendar/validate", _entry(layers="超级用户, 核心用户", stores="静安店"))
    assert answer["ok"] is True, answer["problems"]
    wrong = await ops.post_json("/admin/calendar/validate", _entry(layers="超级会员"))
    assert wrong["problems"]["layers"] == ["分层方案「value」里没有「超级会员」这一层"]
    # The message typed in the form is previewed for a member of the audience, then kept as the entry's own text.
    unguarded = await ops.post_json("/admin/calendar/validate", _entry(message="{{ member.name }}，{{ store.name }}见"))
    assert unguarded["problems"]["template"] == ["有的会员没有这一项（name）：请先用 if 判断再用"] or \
        unguarded["problems"]["template"][0].startswith("有的会员没有称呼")
    typed = _entry(stores="静安店", message="{{ member.name or '你好' }}，周五见～{% if store %}{{ store.name }}{% endif %}")
    shown = await ops.post_json("/admin/calendar/validate", typed)
    assert shown["preview"] is not None, shown["problems"]
    assert shown["preview"]["text"].endswith("，周五见～静安店")
    bad = await ops.post_json("/admin/calendar/validate", typed | {"message": "{{ memeber.name }}"})
    assert bad["problems"]["template"] == ["用了不认识的变量「memeber」"]
    await ops.post("/admin/calendar/new", typed)
    async with sessions() as session:
        row = await store.get_entry(session, "spring")
    assert row is not None and row.template == "calendar/spring.txt.j2" and row.cron == "0 10 * * fri"
    assert '"stores": ["jingan"]' in row.audience and console.server.app[LIVE].settings.templates.texts[
        "calendar/spring.txt.j2"] == typed["message"]
    form = await ops.get("/admin/calendar/spring/edit")
    assert 'value="静安店"' in form and "周五见～" in form and 'value="weekly" selected' in form


async def test_a_channel_code_gets_its_own_welcome_written_in_the_console(corp: Corp) -> None:
    from storage.config_docs import save_document
    from storage.models import Store
    from tests.test_wecom_flow import ALICE
    from tests.wecom_harness import WELCOME, contact_event

    async with corp.sessions() as session, session.begin():
        session.add(Store(code="jingan", name="静安店"))
        await save_document(session, "templates", {"persona/welcome/poster-jingan.txt.j2":
                                                   "{{ member.name or '你好' }}，扫海报来的朋友，欢迎来{{ store.name }}！"},
                            source="console", author="ops")
    await corp.server.app[LIVE].refresh(corp.sessions)
    corp.cloud.add_contact("zhangsan", ALICE, "王芳", state="poster-jingan")
    code = corp.cloud.issue_welcome_code(ALICE, "zhangsan")
    await corp.callback(contact_event("add_external_contact", ALICE, State="poster-jingan", WelcomeCode=code))

    async def welcomed() -> bool:
        return bool(corp.cloud.deliveries(WELCOME))

    await eventually(welcomed)
    (welcome,) = corp.cloud.deliveries(WELCOME)
    assert "扫海报来的朋友，欢迎来静安店" in welcome.body["text"]["content"]


async def test_a_hand_off_task_says_why_in_words_in_either_language(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    from sqlalchemy import select

    from storage.models import StaffTask
    from tests.test_tagging_flow import all_handled

    await console.server.post_message("王芳", "我要投诉")
    await all_handled(sessions)
    async with sessions() as session:
        task = (await session.execute(select(StaffTask).where(StaffTask.kind == "handoff_reply"))).scalars().one()
    ops = await log_in("ops")
    page = await ops.get(f"/admin/tasks/{task.id}")
    assert "转人工原因" in page and "会员说了转人工的关键词" in page and "hand-off word" not in page
    last = re.search(r'data-testid="card-last">([^<]*)<', page)
    assert last and re.search(r"(会员说：我要投诉|我们说：)", last.group(1))
    english = await ops.get(f"/admin/language/en?next=/admin/tasks/{task.id}")
    last = re.search(r'data-testid="card-last">([^<]*)<', english)
    assert "The member asked for a person" in english and last and re.search(r"(member|we) said：", last.group(1))
    assert "她" not in english
