"""Input an attacker chooses gets a clear 4xx and nothing stored (issue 14, items 8 and
15): order amounts, and JSON that Python's parser accepts but nothing downstream can."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from storage.engine import SessionFactory
from storage.models import InboxEntry
from tests.conftest import RunningServer


async def inbox_rows(sessions: SessionFactory) -> int:
    async with sessions() as session:
        return (await session.execute(select(func.count()).select_from(InboxEntry))).scalar_one()


async def post_raw(server: RunningServer, path: str, body: bytes) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    async with server.client.post(f"{server.base}{path}", data=body, headers=headers) as response:
        return response.status, await response.text()


@pytest.mark.parametrize(
    ("amount", "problem"),
    [
        ('"1e999990"', "at most 100000000 yuan"),  # stalled /healthz for 38 s
        ('"1e20"', "at most 100000000 yuan"),  # was accepted, then failed in the dispatcher
        ("1e20", "at most 100000000 yuan"),
        ("100000000.01", "at most 100000000 yuan"),
        ('"NaN"', "finite"),
        ('"-Infinity"', "finite"),
        ('"sNaN"', "finite"),
        ("NaN", "NaN is not a JSON number"),
        ("Infinity", "Infinity is not a JSON number"),
        ("1e999999", "at most 100000000 yuan"),
        ("1" * 5000, "too long"),
        ('"' + "9" * 5000 + '"', "number of yuan"),
        ("true", "number of yuan"),
        ("[1]", "number of yuan"),
    ],
)
async def test_an_order_amount_out_of_bounds_is_a_400_and_nothing_is_stored(
    server: RunningServer, sessions: SessionFactory, amount: str, problem: str
) -> None:
    body = f'{{"member": "孙丽", "order_no": "A-1", "amount": {amount}}}'.encode()
    status, text = await post_raw(server, "/sandbox/orders", body)
    assert status == 400 and problem in text, text
    assert await inbox_rows(sessions) == 0
    async with server.client.get(f"{server.base}/healthz") as response:
        assert response.status == 200


async def test_the_largest_order_is_kept(server: RunningServer, sessions: SessionFactory) -> None:
    status, text = await post_raw(server, "/sandbox/orders", b'{"member": "a", "order_no": "A-2", "amount": "100000000.00"}')
    assert status == 202, text
    assert await inbox_rows(sessions) == 1


@pytest.mark.parametrize("path", ["/sandbox/messages", "/sandbox/orders"])
@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"member": "a", "text": NaN}', "NaN is not a JSON number"),
        (b'{"member": "a", "text": "x", "n": Infinity}', "Infinity is not a JSON number"),
        (b'{"member": "a", "text": "x", "n": -Infinity}', "Infinity is not a JSON number"),
        (b'{"member": "\\ud800", "text": "x"}', "lone surrogate"),
        (b'{"member": "a", "text": "\\udfff"}', "lone surrogate"),
        (b'{"member": "a", "text": "x\\u0000y"}', "NUL"),
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
        (b'{"a":' * 50 + b"1" + b"}" * 50, "nested deeper"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"member": "a", "text": "x"', "malformed JSON"),
    ],
)
async def test_json_the_database_cannot_take_is_a_400_and_nothing_is_stored(
    server: RunningServer, sessions: SessionFactory, path: str, body: bytes, problem: str
) -> None:
    status, text = await post_raw(server, path, body)
    assert status == 400 and problem in text, text
    assert await inbox_rows(sessions) == 0
