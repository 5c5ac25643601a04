"""Issue 14, what siyu shows and leaves lying around: phone numbers however members spell
them, phone searches that cannot read a masked number, the sandbox page's headers, file
modes of the demo's secrets, `siyu check`'s warnings and the libraries' minimum versions."""

from __future__ import annotations

import asyncio
import re
import stat
import tomllib
import unicodedata
from pathlib import Path

from collections.abc import Awaitable, Callable

import pytest
from packaging.requirements import Requirement
from packaging.version import Version
from sqlalchemy import update

from bot.cli.demo_brand import write_config as write_demo_config
from bot.cli.main import main
from storage.engine import SessionFactory, create_database_engine, keep_private, session_factory
from storage.members import mask_phones, search_members
from storage.migrate import upgrade
from storage.models import Member
from tests.conftest import RunningServer, write_config
from tests.console_harness import CONSOLE_CONFIG, ConsoleClient, ConsoleServer, seed_brand

LogIn = Callable[..., Awaitable[ConsoleClient]]
ROOT = Path(__file__).resolve().parent.parent
FULL = "13912345678"


def digits_of(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", text) if c.isdigit())


# -- 9. phones masked however they are spelt, searched only by their last four ------------

@pytest.mark.parametrize("written", [
    "13912345678", "139-1234-5678", "139 1234 5678", "１３９１２３４５６７８", "１３９－１２３４－５６７８",
    "+86 139 1234 5678", "+8613912345678", "＋８６ １３９１２３４５６７８", "0086-139-1234-5678", "8613912345678",
    "139.1234.5678", "(139) 1234 5678",
])
def test_a_mobile_number_is_masked_however_it_is_spelt(written: str) -> None:
    shown = mask_phones(f"我的手机：{written}，谢谢")
    assert "139****5678" in shown and FULL not in digits_of(shown), shown


def test_numbers_that_are_not_mobiles_and_dates_stay_as_written() -> None:
    for text in ("订单 12345678901 已付", "2026-11-24 10:00", "满 200 减 30", "编号 10086"):
        assert mask_phones(text) == text


async def test_a_phone_search_takes_exactly_the_last_four_digits(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    ops = await log_in("ops")
    wangfang = console.brand.members["王芳"]  # 13800135678
    assert f'data-member="{wangfang}"' in await ops.get("/admin/members?q=5678")
    assert f'data-member="{wangfang}"' in await ops.get("/admin/members?q=５６７８")  # full-width
    # One more digit would read the masked middle, one search at a time: refused, and said so.
    for probe in ("35678", "0135678", "00135678", "800135678"):
        page = await ops.get(f"/admin/members?q={probe}")
        assert f'data-member="{wangfang}"' not in page and 'data-testid="phone-tail-refused"' in page, probe
    # The staff command 查 follows the same rule.
    async with sessions() as session:
        owner = console.brand.staff["liuyang"]
        assert [m.id for m in await search_members(session, "5678", owner_staff_id=owner)] == [wangfang]
        assert await search_members(session, "35678", owner_staff_id=owner) == []
        assert await search_members(session, "3-5678", owner_staff_id=owner) == []


async def test_the_member_page_masks_every_spelling_in_remarks(
    console: ConsoleServer, log_in: LogIn, sessions: SessionFactory
) -> None:
    remark = "备用 139-1234-5678；先生 ＋８６ １３７ ２２２２ ３３３３；公司 136 4444 5555"
    async with sessions() as session, session.begin():
        await session.execute(update(Member).where(Member.id == console.brand.members["王芳"]).values(remark=remark))
    page = await (await log_in("liuyang")).get(f"/admin/members/{console.brand.members['王芳']}")
    assert "139****5678" in page and "137****3333" in page and "136****5555" in page
    for full in (FULL, "13722223333", "13644445555"):
        assert full not in digits_of(re.sub(r"<[^>]+>", " ", page))


# -- 16. the sandbox page's headers, and the libraries' minimum versions --------------------

async def test_the_sandbox_page_may_not_be_framed_sniffed_or_run_foreign_scripts(server: RunningServer) -> None:
    async with server.client.get(server.base + "/sandbox") as response:
        assert response.status == 200
        headers, page = response.headers, await response.text()
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    policy = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy and "unsafe-inline" not in policy
    assert "script-src 'sha256-" in policy and "<script>" in page  # its own inline script, by digest


SECURITY_FLOORS = {"aiohttp": "3.14.3", "jinja2": "3.1.6", "cryptography": "50.0.0"}


def test_the_minimum_versions_carry_the_security_fixes_we_rely_on() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    floors = {}
    for line in declared:
        requirement = Requirement(line)
        lows = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
        floors[requirement.name.lower()] = max(lows) if lows else None
    for name, release in SECURITY_FLOORS.items():
        assert floors[name] is not None and floors[name] >= Version(release), name


# -- 11. the demo's secrets are its owner's only; siyu check warns -----------------------

def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_demo_writes_its_config_and_database_for_its_owner_only(tmp_path: Path) -> None:
    config = write_demo_config(tmp_path / "demo", 8080)
    assert mode_of(config) == 0o600 and "secret" in config.read_text(encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'demo' / 'siyu.db'}"
    keep_private(url)
    upgrade(url)
    assert mode_of(tmp_path / "demo" / "siyu.db") == 0o600
    # A demo folder from before the fix is narrowed when the demo runs again.
    config.chmod(0o644)
    write_demo_config(tmp_path / "demo", 8080)
    assert mode_of(config) == 0o600


def test_check_warns_about_a_readable_config_that_holds_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'siyu.db'}"
    path = write_config(tmp_path, url, CONSOLE_CONFIG)
    path.chmod(0o644)
    assert main(["check", "--config", str(path)]) == 0  # a warning, not a refusal
    said = capsys.readouterr().err
    assert "warning" in said and "mode 0644" in said and "console.secret" in said and "chmod 600" in said
    path.chmod(0o600)
    assert main(["check", "--config", str(path)]) == 0
    assert "mode 0644" not in capsys.readouterr().err
    # Secrets given as "env:NAME" are not in the file: nothing to warn about.
    clean = tmp_path / "env"
    clean.mkdir()
    monkeypatch.setenv("SIYU_TEST_API_TOKEN", "an-api-token-long-enough-0123456789")
    plain = write_config(clean, url, '[server]\napi_token = "env:SIYU_TEST_API_TOKEN"\n')
    plain.chmod(0o644)
    assert main(["check", "--config", str(plain)]) == 0
    assert "warning" not in capsys.readouterr().err


# -- 2. a console login named like a staff member -----------------------------------------

def test_check_warns_about_a_console_login_that_is_also_a_staff_userid(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def seed() -> None:
        engine = create_database_engine(db_url)
        try:
            await seed_brand(session_factory(engine))
        finally:
            await engine.dispose()

    asyncio.run(seed())
    operator_chenjing = CONSOLE_CONFIG.replace('login = "chenjing"\nrole = "staff"\nstaff = "chenjing"',
                                               'login = "chenjing"\nrole = "operator"')
    path = write_config(tmp_path, db_url, operator_chenjing)
    path.chmod(0o600)
    assert main(["check", "--config", str(path)]) == 0
    said = capsys.readouterr().err
    assert "login 'chenjing' (an operator) is also a staff member's userid" in said
    # liuyang's own staff login is her, not a collision.
    assert "'liuyang'" not in said and "'zhoumin'" not in said

