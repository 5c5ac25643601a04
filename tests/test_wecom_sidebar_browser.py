"""The chat sidebar in a real browser at phone width (Debian's chromium through
Playwright), with a small stand-in for WeCom's `wx` object injected before the page runs:
it answers getContext, getCurExternalContact and getCurExternalChat as the client would,
and records what sendChatMessage was asked to put into the chat."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.platforms.wecom.jssdk import signature
from storage.models import StaffTask
from tests.browser_harness import needs_chromium, screenshot_path
from tests.sidebar_harness import CHAT, WANG, WORDS, SidebarServer

pytest.importorskip("playwright", reason="browser tests need the playwright package (pip install -e '.[test]')")
from playwright.async_api import Browser, Page, expect  # noqa: E402

pytestmark = needs_chromium
ON_SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
PHONE = {"width": 390, "height": 844}

# What WeCom's client does for the page, as far as the sidebar uses it.
WX_STAND_IN = """
window.__wx = { sent: [], config: null, agentConfig: null, entry: %(entry)s, contact: %(contact)s, chat: %(chat)s,
                refuse: %(refuse)s, refusing: false, configs: 0 };
window.wx = {
  config: function (c) {
    var w = window.__wx;
    w.config = c; w.configs += 1; w.refusing = w.refuse > 0; if (w.refusing) w.refuse -= 1;
  },
  ready: function (f) { if (!window.__wx.refusing) setTimeout(f, 0); },
  error: function (f) { if (window.__wx.refusing) setTimeout(function () { f({ errMsg: "config:fail" }); }, 0); },
  agentConfig: function (c) { window.__wx.agentConfig = c; setTimeout(function () { c.success({ errMsg: "agentConfig:ok" }); }, 0); },
  invoke: function (name, args, cb) {
    var w = window.__wx;
    if (name === "getContext") return cb({ err_msg: "getContext:ok", entry: w.entry });
    if (name === "getCurExternalContact") return cb({ err_msg: "getCurExternalContact:ok", userId: w.contact });
    if (name === "getCurExternalChat") return cb({ err_msg: "getCurExternalChat:ok", chatId: w.chat });
    if (name === "sendChatMessage") { w.sent.push(args); return cb({ err_msg: "sendChatMessage:ok" }); }
    cb({ err_msg: name + ":fail" });
  }
};
"""


async def open_sidebar(browser: Browser, sidebar: SidebarServer, staff: str, entry: str = "single_chat_tools",
                       contact: str | None = WANG, chat: str | None = None, refuse: int = 0) -> Page:
    """`refuse`: how many times the client refuses the signatures (wx.error) before it takes them."""
    sidebar.cloud.client_user = staff
    page = await browser.new_page(viewport=PHONE, locale="zh-CN", device_scale_factor=2)
    quoted = {k: ("null" if v is None else f'"{v}"') for k, v in {"entry": entry, "contact": contact, "chat": chat}.items()}
    quoted["refuse"] = str(refuse)
    await page.add_init_script(WX_STAND_IN % quoted)
    await page.goto(sidebar.url)
    return page


async def stand_in(page: Page) -> Any:
    return await page.evaluate("window.__wx")


@ON_SQLITE
async def test_a_staff_member_sees_the_card_marks_the_task_done_and_inserts_the_words(
    sidebar: SidebarServer, browser: Browser, tmp_path: Path
) -> None:
    page = await open_sidebar(browser, sidebar, "zhangsan")
    await expect(page.get_by_test_id("member-name")).to_have_text("王芳")
    await expect(page.get_by_test_id("member-store")).to_contain_text("静安店")
    await expect(page.get_by_test_id("tags")).to_contain_text("面包控")
    await expect(page.get_by_test_id("task-words")).to_have_text(WORDS)
    await expect(page.get_by_test_id("messages")).to_contain_text("138****5678")
    await expect(page.get_by_test_id("value-none")).to_contain_text("还没有估算")  # no LTV fit yet
    await page.screenshot(path=screenshot_path(tmp_path, "wecom-sidebar.png"), full_page=True)

    # The page configured the JS-SDK with our signatures over its own URL.
    wx = await stand_in(page)
    config, agent = wx["config"], wx["agentConfig"]
    assert config["appId"] == sidebar.cloud.corp_id and agent["agentid"] == 1000002
    assert config["signature"] == signature(sidebar.cloud.ticket_value("jsapi"), config["nonceStr"], config["timestamp"], sidebar.url)
    assert agent["signature"] == signature(sidebar.cloud.ticket_value("agent_config"), agent["nonceStr"], agent["timestamp"], sidebar.url)
    assert "sendChatMessage" in agent["jsApiList"]

    await page.get_by_test_id("insert-words").click()
    await expect(page.get_by_test_id("toast")).to_contain_text("按发送")
    assert (await stand_in(page))["sent"] == [{"msgtype": "text", "enterChat": False, "text": {"content": WORDS}}]

    await page.get_by_test_id("done-button").click()
    await expect(page.get_by_test_id("tasks")).to_contain_text("没有待办")
    async with sidebar.sessions() as session:
        assert (await session.get(StaffTask, sidebar.brand.task)).status == "done"


@ON_SQLITE
async def test_the_card_shows_her_lifetime_value_explained(sidebar: SidebarServer, browser: Browser) -> None:
    from datetime import date

    from storage.outcome_models import LtvScore
    async with sidebar.sessions() as session, session.begin():
        session.add(LtvScore(member_id=sidebar.brand.wang, as_of=date(2026, 11, 23), p_alive=0.834, orders_90d=2.43,
                             clv_90d_cents=21_650.0))
    page = await open_sidebar(browser, sidebar, "zhangsan")
    await expect(page.get_by_test_id("value-p-alive")).to_have_text("还会回来买的可能性：83%")
    await expect(page.get_by_test_id("value-orders")).to_have_text("未来 90 天预计下单：2.4 次")
    await expect(page.get_by_test_id("value-spend")).to_have_text("未来 90 天预计消费：¥216.50")
    await expect(page.get_by_test_id("value-explained")).to_contain_text("是估算，不是承诺")


@ON_SQLITE
async def test_another_stores_staff_sees_nothing_of_that_member(sidebar: SidebarServer, browser: Browser) -> None:
    page = await open_sidebar(browser, sidebar, "lisi")
    await expect(page.get_by_test_id("nothing")).to_contain_text("不由你服务")
    body = await page.inner_text("body")
    assert "王芳" not in body and "面包控" not in body and "静安店" not in body


@ON_SQLITE
async def test_in_a_customer_group_the_sidebar_lists_her_members_with_layers(
    sidebar: SidebarServer, browser: Browser, tmp_path: Path
) -> None:
    page = await open_sidebar(browser, sidebar, "zhangsan", entry="group_chat_tools", contact=None, chat=CHAT)
    await expect(page.get_by_test_id("group-name")).to_have_text("静安店烘焙交流群")
    await expect(page.get_by_test_id("group-member")).to_have_count(1)
    await expect(page.get_by_test_id("group-member")).to_contain_text("超级用户")
    assert "赵磊" not in await page.inner_text("body")
    await page.screenshot(path=screenshot_path(tmp_path, "wecom-sidebar-group.png"), full_page=True)


@ON_SQLITE
async def test_outside_wecom_the_page_says_where_to_open_it(sidebar: SidebarServer, browser: Browser) -> None:
    sidebar.cloud.client_user = "zhangsan"
    page = await browser.new_page(viewport=PHONE, locale="zh-CN")
    await page.route("**/*", lambda route: route.abort() if "qq.com" in route.request.url else route.continue_())
    await page.goto(sidebar.url)
    await expect(page.get_by_test_id("status")).to_contain_text("企业微信")


@ON_SQLITE
async def test_signatures_the_client_refuses_are_made_again_once_with_fresh_tickets(
    sidebar: SidebarServer, browser: Browser
) -> None:
    page = await open_sidebar(browser, sidebar, "zhangsan", refuse=1)
    await expect(page.get_by_test_id("member-name")).to_have_text("王芳")
    wx = await stand_in(page)
    assert wx["configs"] == 2 and sidebar.cloud.ticket_fetches("jsapi") == 2
    assert wx["config"]["signature"] == signature(
        sidebar.cloud.ticket_value("jsapi"), wx["config"]["nonceStr"], wx["config"]["timestamp"], sidebar.url)

    page = await open_sidebar(browser, sidebar, "zhangsan", refuse=2)  # refused again: said, not looped
    await expect(page.get_by_test_id("status")).to_contain_text("没有接受签名")
