"""A running server with the console on, logins for each role, and a client that logs in.

Fixtures: `console` (the server, with a small brand seeded: two stores, their staff and
members) and `log_in` (an HTTP client signed in as a given login).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.console.passwords import hash_password
from bot.settings.model import load_settings
from bot.web.app import build_app
from storage.engine import SessionFactory
from storage.models import Member, MemberIdentity, Staff, StaffTask, Store
from tests.conftest import RunningServer, start_server, write_config

PASSWORD = "禾麦-correct-horse"
OPERATOR_TOKEN = "ops-token-0123456789abcdef"
_HASH = hash_password(PASSWORD)

CONSOLE_CONFIG = f"""
[console]
secret = "a-test-secret-that-is-long-enough-0123456789"

[[console.users]]
login = "ops"
role = "operator"
password_hash = "{_HASH}"

[[console.users]]
login = "robot"
role = "operator"
token = "{OPERATOR_TOKEN}"
export_phones = true

[[console.users]]
login = "liuyang"
role = "staff"
staff = "liuyang"
password_hash = "{_HASH}"

[[console.users]]
login = "chenjing"
role = "staff"
staff = "chenjing"
password_hash = "{_HASH}"

[[console.users]]
login = "zhoumin"
role = "staff"
staff = "zhoumin"
password_hash = "{_HASH}"
"""


class LoginRefused(Exception):
    def __init__(self, status: int, page: str):
        super().__init__(f"login refused with {status}")
        self.status, self.page = status, page


@dataclass
class Brand:
    """What the seed holds, by name."""

    stores: dict[str, int]
    staff: dict[str, int]
    members: dict[str, int]
    tasks: dict[str, int]


async def seed_brand(sessions: SessionFactory) -> Brand:
    """Two stores. 静安店: manager 陈静 and 刘洋; 徐汇店: 周敏. Members 王芳 and 李娜 are
    刘洋's, 赵雪 is 周敏's. One open task for each of 刘洋 and 周敏."""
    async with sessions() as session, session.begin():
        jingan, xuhui = Store(code="jingan", name="静安店", city="上海"), Store(code="xuhui", name="徐汇店", city="上海")
        session.add_all([jingan, xuhui])
        await session.flush()
        chenjing = Staff(userid="chenjing", name="陈静", store_id=jingan.id, role="manager")
        liuyang = Staff(userid="liuyang", name="刘洋", store_id=jingan.id)
        zhoumin = Staff(userid="zhoumin", name="周敏", store_id=xuhui.id)
        session.add_all([chenjing, liuyang, zhoumin])
        await session.flush()
        wangfang = Member(name="王芳", phone="13800135678", store_id=jingan.id, owner_staff_id=liuyang.id,
                          birth_month=3, birth_day=14, member_since=date(2024, 5, 1))
        lina = Member(name="李娜", phone="13900001111", store_id=jingan.id, owner_staff_id=liuyang.id)
        zhaoxue = Member(name="赵雪", phone="13700002222", store_id=xuhui.id, owner_staff_id=zhoumin.id)
        session.add_all([wangfang, lina, zhaoxue])
        await session.flush()
        session.add_all([MemberIdentity(member_id=m.id, platform="sandbox", external_id=m.name)  # type: ignore[arg-type]
                         for m in (wangfang, lina, zhaoxue)])
        today = datetime.now(ZoneInfo("Asia/Shanghai")).date()  # the brand's day, as the pages count
        birthday = StaffTask(dedupe_key="care:birthday:wangfang", staff_id=liuyang.id, member_id=wangfang.id,
                             kind="care", title="王芳 生日：送一束花", body="王芳姐，生日快乐！给您留了一束花，方便时来店里取。",
                             due_date=today + timedelta(days=1))
        revisit = StaffTask(dedupe_key="churn:zhaoxue", staff_id=zhoumin.id, member_id=zhaoxue.id,
                            kind="churn_follow_up", title="流失回访：赵雪", due_date=today - timedelta(days=3))
        session.add_all([birthday, revisit])
        await session.flush()
        return Brand(
            stores={"jingan": jingan.id, "xuhui": xuhui.id},  # type: ignore[dict-item]
            staff={"chenjing": chenjing.id, "liuyang": liuyang.id, "zhoumin": zhoumin.id},  # type: ignore[dict-item]
            members={"王芳": wangfang.id, "李娜": lina.id, "赵雪": zhaoxue.id},  # type: ignore[dict-item]
            tasks={"birthday": birthday.id, "revisit": revisit.id},  # type: ignore[dict-item]
        )


@dataclass
class ConsoleServer:
    server: RunningServer
    brand: Brand

    @property
    def base(self) -> str:
        return self.server.base


@pytest.fixture
async def console(db_url: str, tmp_path: Path, sessions: SessionFactory) -> AsyncIterator[ConsoleServer]:
    settings = load_settings(write_config(tmp_path, db_url, CONSOLE_CONFIG))
    brand = await seed_brand(sessions)
    async with aiohttp.ClientSession() as http:
        running = await start_server(build_app(settings), http)
        yield ConsoleServer(running, brand)
        await running.stop()


class ConsoleClient:
    """An HTTP client with its own cookie jar, signed in to the console."""

    def __init__(self, base: str, http: aiohttp.ClientSession):
        self.base, self.http = base, http

    async def get(self, path: str, expect: int = 200) -> str:
        async with self.http.get(self.base + path, allow_redirects=True) as response:
            text = await response.text()
            assert response.status == expect, f"GET {path}: {response.status}\n{text[:500]}"
            return text

    async def csrf(self, path: str = "/admin/tasks") -> str:
        found = re.search(r'name="csrf-token" content="([^"]+)"', await self.get(path))
        assert found, "no CSRF token on the page"
        return found.group(1)

    async def post(self, path: str, data: dict[str, Any], expect: int = 200, csrf: bool = True) -> str:
        form = dict(data) | ({"csrf": await self.csrf()} if csrf else {})
        async with self.http.post(self.base + path, data=form, allow_redirects=True) as response:
            text = await response.text()
            assert response.status == expect, f"POST {path}: {response.status}\n{text[:500]}"
            return text

    async def post_json(self, path: str, body: Any, expect: int = 200) -> Any:
        headers = {"X-CSRF-Token": await self.csrf()}
        async with self.http.post(self.base + path, json=body, headers=headers) as response:
            assert response.status == expect, f"POST {path}: {response.status}\n{(await response.text())[:500]}"
            return await response.json()


@pytest.fixture
async def log_in(console: ConsoleServer) -> AsyncIterator[Callable[[str], Awaitable[ConsoleClient]]]:
    clients: list[aiohttp.ClientSession] = []

    async def signed_in(login: str, password: str = PASSWORD) -> ConsoleClient:
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # cookies for 127.0.0.1
        clients.append(http)
        client = ConsoleClient(console.base, http)
        page = await client.get("/admin/login")
        token = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert token
        async with http.post(console.base + "/admin/login", data={
            "login": login, "password": password, "csrf": token.group(1), "next": "",
        }) as response:
            if response.status != 200 or response.url.path == "/admin/login":
                raise LoginRefused(response.status, await response.text())
        return client

    yield signed_in
    for http in clients:
        await http.close()
