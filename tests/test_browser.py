"""The sandbox chat page in a real browser (Debian's chromium, driven by Playwright)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import RunningServer

pytest.importorskip("playwright", reason="browser tests need the playwright package (pip install -e '.[test]')")
from playwright.async_api import Browser, async_playwright, expect  # noqa: E402

CHROMIUM = os.environ.get("SIYU_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
# Screenshots go to $SIYU_SCREENSHOTS when set (docs/screenshots is refreshed that way),
# else to the test's temporary folder.
SCREENSHOTS = os.environ.get("SIYU_SCREENSHOTS")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="browser tests need chromium on PATH (apt-get install chromium) or SIYU_CHROMIUM"
)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        yield browser
        await browser.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_member_chats_and_the_persona_reply_appears_without_reloading(
    server: RunningServer, browser: Browser, tmp_path: Path
) -> None:
    page = await browser.new_page(viewport={"width": 1100, "height": 720}, locale="zh-CN")
    await page.goto(f"{server.base}/sandbox")
    await page.get_by_test_id("new-member-input").fill("王芳")
    await page.get_by_test_id("new-member-button").click()
    await expect(page.get_by_test_id("connection-status")).to_contain_text("已连接")

    await page.get_by_test_id("message-input").fill("想买全麦吐司，有推荐吗")
    await page.get_by_test_id("send-button").click()

    mine = page.locator('[data-testid="message"][data-direction="in"]')
    replies = page.locator('[data-testid="message"][data-direction="out"]')
    await expect(mine).to_have_count(1)
    await expect(replies).to_have_count(1)
    await expect(replies.first).to_contain_text("面包控")
    await expect(page.get_by_test_id("member-list")).to_contain_text("王芳")
    await page.screenshot(path=str(Path(SCREENSHOTS or tmp_path) / "sandbox-chat.png"))

    # A reload shows the same conversation from history, once.
    await page.reload()
    await page.get_by_test_id("member-item").filter(has_text="王芳").click()
    await expect(mine).to_have_count(1)
    await expect(replies).to_have_count(1)
