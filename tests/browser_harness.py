"""A real browser for page tests: Debian's chromium, driven by Playwright (fixture `browser`).

Screenshots go to $SIYU_SCREENSHOTS when set (docs/screenshots is refreshed that way:
`SIYU_SCREENSHOTS=docs/screenshots python -m pytest tests/test_browser.py
tests/test_console_browser.py`), else to the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("SIYU_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = os.environ.get("SIYU_SCREENSHOTS")

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="browser tests need chromium on PATH (apt-get install chromium) or SIYU_CHROMIUM"
)


def screenshot_path(tmp_path: Path, name: str) -> str:
    return str(Path(SCREENSHOTS or tmp_path) / name)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    playwright_api = pytest.importorskip(
        "playwright.async_api", reason="browser tests need the playwright package (pip install -e '.[test]')"
    )
    async with playwright_api.async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        yield launched
        await launched.close()
