"""Content and rules edited in the console, in a real browser (Debian's chromium driven
by Playwright): a calendar message typed with its preview following, and a tag rule and
the persona's reply changed in the console reaching a member in the sandbox without a
restart. Screenshots of the new pages are kept for the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.calendar import Audience, EntrySpec
from storage.engine import SessionFactory
from tests.browser_harness import needs_chromium, screenshot_path
from tests.console_harness import ConsoleServer
from tests.test_console_browser import ON_SQLITE, logged_in

pytest.importorskip("playwright", reason="browser tests need the playwright package (pip install -e '.[test]')")
from playwright.async_api import Browser, expect  # noqa: E402

pytestmark = needs_chromium

FRIDAY = EntrySpec("friday", "calendar/new_season.txt.j2", "oa", Audience(stores=("jingan",)), "0 10 * * fri",
                   title="周五新品")


@ON_SQLITE
async def test_an_operator_types_a_calendar_message_and_the_preview_follows(
    console: ConsoleServer, sessions: SessionFactory, browser: Browser, tmp_path: Path
) -> None:
    async with sessions() as session, session.begin():
        session.add(FRIDAY.row())
    page = await logged_in(browser, console, "ops", "/admin/calendar/friday/edit")
    await expect(page.get_by_test_id("field-repeat")).to_have_value("weekly")  # 0 10 * * fri, in words
    await expect(page.get_by_test_id("field-weekday")).to_have_value("fri")
    await expect(page.get_by_test_id("field-stores")).to_have_value("静安店")  # the name, not the code
    await expect(page.get_by_test_id("preview-text")).to_contain_text("换季啦")

    message = page.get_by_test_id("field-message")
    await message.fill("{{ member.name or '你好' }}，本周五新品试吃，")
    await expect(page.get_by_test_id("preview-text")).to_contain_text("本周五新品试吃")
    await expect(page.get_by_test_id("preview-text")).not_to_contain_text("换季啦")
    # The picker inserts a variable at the cursor; used bare, the check says why in Chinese.
    await message.press("End")
    await page.get_by_test_id("variable-picker").get_by_role("button", name="会员所在门店").click()
    await expect(message).to_have_value("{{ member.name or '你好' }}，本周五新品试吃，{{ store.name }}")
    await expect(page.get_by_test_id("problems-template")).to_contain_text("有的会员没有这一项（name）")
    await message.fill("{{ member.name or '你好' }}，本周五新品试吃，{% if store %}{{ store.name }}{% endif %}见")
    await expect(page.get_by_test_id("problems-template")).to_be_empty()
    await expect(page.get_by_test_id("preview-text")).to_contain_text("本周五新品试吃，静安店见")
    await page.screenshot(path=screenshot_path(tmp_path, "console-calendar-message.png"), full_page=True)
    await page.get_by_test_id("save-button").click()
    await expect(page.get_by_test_id("calendar-notice")).to_contain_text("friday")
    await expect(page.locator('[data-testid="calendar-entry"][data-entry="friday"]')).to_contain_text("静安店")


@ON_SQLITE
async def test_a_tag_rule_and_the_reply_changed_in_the_console_reach_the_sandbox_without_a_restart(
    console: ConsoleServer, browser: Browser, tmp_path: Path
) -> None:
    page = await logged_in(browser, console, "ops", "/admin/rules")
    new_rule = page.get_by_test_id("new-rule")
    await new_rule.locator("summary").click()
    form = page.get_by_test_id("new-rule-form")
    await form.get_by_test_id("rule-tag").fill("抹茶控")
    await form.get_by_test_id("rule-group").fill("口味偏好")
    await form.get_by_test_id("rule-keywords").fill("抹茶、宇治")
    await form.get_by_test_id("rule-save").click()
    await expect(page.get_by_test_id("rules-notice")).to_contain_text("已保存规则")
    await expect(page.locator('[data-testid="rule-row"][data-rule="rule-2"]')).to_contain_text("抹茶控")
    await page.screenshot(path=screenshot_path(tmp_path, "console-rules-edit.png"), full_page=True)

    await page.goto(console.base + "/admin/settings")
    await page.screenshot(path=screenshot_path(tmp_path, "console-settings.png"), full_page=True)
    await page.locator('[data-testid="settings-text"][data-text="persona/reply.txt.j2"]').get_by_role("link").click()
    body = page.get_by_test_id("text-body")
    await expect(body).to_contain_text("我记下你的偏好啦")
    await page.get_by_test_id("preview-member").select_option(label="赵雪 · 徐汇店")
    await body.fill("{{ member.name or '你好' }}，新口味已登记：{{ new_tags | join('、') }}。— {{ persona.signature }}")
    await expect(page.get_by_test_id("text-preview")).to_contain_text("赵雪，新口味已登记：。— 小禾 · 禾麦烘焙")
    await page.get_by_test_id("text-save").click()
    await expect(page.get_by_test_id("settings-notice")).to_contain_text("已保存为第 2 版")
    await expect(page.get_by_test_id("version-row")).to_have_count(2)
    await page.screenshot(path=screenshot_path(tmp_path, "console-settings-text.png"), full_page=True)

    sandbox = await browser.new_page(viewport={"width": 1100, "height": 720}, locale="zh-CN")
    await sandbox.goto(console.base + "/sandbox")
    await sandbox.get_by_test_id("member-item").filter(has_text="李娜").click()
    await expect(sandbox.get_by_test_id("connection-status")).to_contain_text("已连接")
    await sandbox.get_by_test_id("message-input").fill("有宇治抹茶味的蛋糕吗")
    await sandbox.get_by_test_id("send-button").click()
    reply = sandbox.locator('[data-testid="message"][data-direction="out"]').last
    await expect(reply).to_contain_text("李娜，新口味已登记：抹茶控")

    await page.goto(console.base + f"/admin/members/{console.brand.members['李娜']}")
    await expect(page.locator("main")).to_contain_text("抹茶控")


@ON_SQLITE
async def test_an_operator_edits_the_persona_and_an_faq_answer_in_forms(
    console: ConsoleServer, browser: Browser, tmp_path: Path
) -> None:
    page = await logged_in(browser, console, "ops", "/admin/settings")
    await page.locator('[data-testid="settings-section"][data-section="persona"]').get_by_role("link").click()
    await expect(page.get_by_test_id("field-name")).to_have_value("小禾")
    await expect(page.get_by_test_id("tips-0-tag")).to_have_value("面包控")
    await page.get_by_test_id("field-name").fill("")
    await page.get_by_test_id("field-name").evaluate("e => e.removeAttribute('required')")  # the server's check too
    await page.get_by_test_id("field-title").fill("禾麦烘焙的面包师")
    await page.get_by_test_id("settings-save").click()
    await expect(page.get_by_test_id("problems-name")).to_contain_text("不能为空")
    await expect(page.get_by_test_id("field-title")).to_have_value("禾麦烘焙的面包师")  # what was typed stays
    await page.get_by_test_id("field-name").fill("小麦")
    await page.get_by_test_id("add-tip").click()
    await page.get_by_test_id("tips-2-tag").fill("蛋糕控")
    await page.get_by_test_id("tips-2-text").fill("蛋糕回温五分钟再吃")
    await page.get_by_test_id("settings-save").click()
    await expect(page.get_by_test_id("settings-notice")).to_contain_text("已保存为第 2 版")
    await expect(page.get_by_test_id("field-name")).to_have_value("小麦")
    await expect(page.locator('[data-testid="tip-row"] input[value="蛋糕控"]')).to_have_count(1)  # saved, in the list
    await page.screenshot(path=screenshot_path(tmp_path, "console-settings-persona.png"), full_page=True)

    await page.goto(console.base + "/admin/settings/replies")
    await page.get_by_test_id("faq-0-keywords").fill("几点开门、营业时间")
    await page.get_by_test_id("faq-0-answer").fill("{{ memeber.name }}：门店每天 8:00 开门。")
    await expect(page.get_by_test_id("faq-0-preview")).to_contain_text("用了不认识的变量「memeber」")
    await page.get_by_test_id("faq-0-answer").fill("{{ persona.name }}：门店每天 8:00 开门。")
    await expect(page.get_by_test_id("faq-0-preview")).to_contain_text("小麦：门店每天 8:00 开门。")  # as the persona says it
    await page.get_by_test_id("settings-save").click()
    await expect(page.get_by_test_id("settings-notice")).to_contain_text("已保存为第")
    await expect(page.get_by_test_id("faq-0-answer")).to_have_value("{{ persona.name }}：门店每天 8:00 开门。")

    # At a phone's width the form fits without sideways scrolling.
    phone = await browser.new_page(viewport={"width": 375, "height": 740}, locale="zh-CN")
    await phone.context.add_cookies(await page.context.cookies())
    await phone.goto(console.base + "/admin/settings/replies")
    await expect(phone.get_by_test_id("faq-0-keywords")).to_have_value("几点开门、营业时间")
    await phone.screenshot(path=screenshot_path(tmp_path, "mobile-settings-faq.png"))
    for form in ("replies", "persona", "handoff", "opt_out", "delivery", "care"):
        await phone.goto(console.base + f"/admin/settings/{form}")
        await expect(phone.get_by_test_id("settings-save")).to_be_visible()
        width = await phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{form} is {width} px wide"

    sandbox = await browser.new_page(viewport={"width": 1100, "height": 720}, locale="zh-CN")
    await sandbox.goto(console.base + "/sandbox")
    await sandbox.get_by_test_id("member-item").filter(has_text="王芳").click()
    await expect(sandbox.get_by_test_id("connection-status")).to_contain_text("已连接")
    await sandbox.get_by_test_id("message-input").fill("请问几点开门？")
    await sandbox.get_by_test_id("send-button").click()
    reply = sandbox.locator('[data-testid="message"][data-direction="out"]').last
    await expect(reply).to_contain_text("小麦：门店每天 8:00 开门。")
