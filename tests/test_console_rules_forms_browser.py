"""The tag rule and layer forms in a real browser (Debian's chromium through Playwright):
an operator adds an event rule by its labels and a member in the sandbox gets its tag
without a restart; a bad regex is shown at its field; both forms fit a phone's width."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.engine import SessionFactory
from tests.browser_harness import needs_chromium, screenshot_path
from tests.console_harness import ConsoleServer
from tests.test_console_browser import ON_SQLITE, logged_in
from tests.test_tagging_flow import say, tags

pytest.importorskip("playwright", reason="browser tests need the playwright package (pip install -e '.[test]')")
from playwright.async_api import Browser, expect  # noqa: E402

pytestmark = needs_chromium


@ON_SQLITE
async def test_an_operator_adds_an_event_rule_by_its_labels_and_it_tags_in_the_sandbox(
    console: ConsoleServer, sessions: SessionFactory, browser: Browser, tmp_path: Path
) -> None:
    page = await logged_in(browser, console, "ops", "/admin/rules")
    await page.get_by_test_id("edit-tags").click()
    await expect(page.get_by_test_id("tagrules-0-tag")).to_have_value("面包控")

    # A regex RE2 cannot run is refused at its pattern, what was typed kept.
    await page.get_by_test_id("tagrules-1-kind").select_option(label="正则")
    await expect(page.get_by_test_id("tagrules-1-keywords")).to_be_hidden()  # only the kind's own fields
    await page.get_by_test_id("tagrules-1-tag").fill("问地址")
    await page.get_by_test_id("tagrules-1-pattern").fill("(?<=在)哪")
    await page.get_by_test_id("settings-save").click()
    await expect(page.get_by_test_id("problems-tagrules-1-pattern")).to_contain_text("不是有效的正则表达式")
    await expect(page.get_by_test_id("tagrules-1-pattern")).to_have_value("(?<=在)哪")

    await page.get_by_test_id("tagrules-1-kind").select_option(label="事件")
    await page.get_by_test_id("tagrules-1-tag").fill("已退订")
    await page.get_by_test_id("tagrules-1-event").select_option(label="下单")
    await page.get_by_test_id("tagrules-1-subject").select_option(label="静安店")  # the store by name
    await page.get_by_test_id("tagrules-1-event").select_option(label="退订营销消息")
    await expect(page.get_by_test_id("tagrules-1-subject")).to_be_disabled()  # opting out names nothing
    await page.get_by_test_id("groups-0-name").fill("订阅")
    await page.get_by_test_id("groups-0-exclusive").check()
    await page.get_by_test_id("tagrules-1-group").fill("订阅")
    await page.get_by_test_id("settings-save").click()
    await expect(page.get_by_test_id("settings-notice")).to_contain_text("已保存为第")
    await expect(page.locator('[data-testid="tagrule-row"][data-kind="event"]')).to_have_count(1)
    await page.screenshot(path=screenshot_path(tmp_path, "console-settings-tags.png"), full_page=True)

    await say(console.server, sessions, "赵雪", "退订")
    assert (await tags(sessions, "赵雪"))["已退订"][:2] == ("rule", "rule-2")

    phone = await browser.new_page(viewport={"width": 375, "height": 740}, locale="zh-CN")
    await phone.context.add_cookies(await page.context.cookies())
    for form in ("tags", "layers"):
        await phone.goto(console.base + f"/admin/settings/{form}")
        await expect(phone.get_by_test_id("settings-save")).to_be_visible()
        width = await phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{form} is {width} px wide"
    await phone.get_by_test_id("cond-0-0-0-value").scroll_into_view_if_needed()
    await phone.screenshot(path=screenshot_path(tmp_path, "mobile-settings-layers.png"))
