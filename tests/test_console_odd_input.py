"""Odd query values and ids in the console and the WeCom sidebar get a 4xx, never a
500 (issue 14 item 15): `str.isdigit()` accepts "²", and ids past 64 bits overflow the
database's integers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

import aiohttp
import pytest

from tests.console_harness import ConsoleClient, ConsoleServer

HUGE = str(2**64)
ODD = ["²", "٣", "9" * 30, HUGE, "-1", "1e3", "\u0000", "%ff"]


@pytest.mark.parametrize("until", ["²", "9" * 30, str(2**64), "٣", "1e99"])
async def test_a_task_link_with_an_odd_expiry_goes_to_the_login(console: ConsoleServer, until: str) -> None:
    async with aiohttp.ClientSession() as http:  # not signed in
        url = f"{console.base}/admin/tasks?as=x&until={quote(until)}&sig=x"
        async with http.get(url, allow_redirects=False) as response:
            assert response.status in (302, 303), response.status
            assert "/admin/login" in response.headers["Location"]


async def test_odd_pages_ids_and_cursors_are_never_a_500(
    console: ConsoleServer, log_in: Callable[[str], Awaitable[ConsoleClient]]
) -> None:
    ops = await log_in("ops")
    member = console.brand.members["王芳"]
    for value in ODD:
        await ops.get(f"/admin/members?page={quote(value)}")
        await ops.get(f"/admin/members/{member}?before={quote(value)}")
        await ops.get(f"/admin/staff?hand_over={quote(value)}")
    for path in (f"/admin/members/{HUGE}", f"/admin/tasks/{HUGE}", "/admin/members/99999999999999999999999",
                 f"/admin/members/{quote('²')}", f"/admin/tasks/{quote('٣')}"):
        await ops.get(path, expect=404)
    form = {"to": HUGE}
    await ops.post(f"/admin/staff/{HUGE}/hand-over", form, expect=404)
