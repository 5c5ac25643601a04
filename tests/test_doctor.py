"""`siyu doctor` against the fake WeCom cloud and a real server: every connection failure
the fake can produce is found and explained, in Chinese and English."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import aiohttp
import pytest

from bot.cli.doctor import mass_cap_finding, run_checks
from bot.cli.main import main
from bot.settings.model import load_settings
from bot.shared.findings import Finding
from bot.web.app import build_app
from storage.migrate import upgrade
from tests.conftest import RunningServer, start_server, write_config
from tests.fakes.wecom_cloud import FakeWeComCloud
from tests.wecom_harness import AES_KEY, CORP, OA_APPID, OA_SECRET, SECRET, TOKEN, wecom_config

FOLLOW_USERS = "/cgi-bin/externalcontact/get_follow_user_list"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Brand:
    cloud: FakeWeComCloud
    server: RunningServer
    directory: Path
    url: str

    def config(self, name: str = "doctor", *, replace: tuple[tuple[str, str], ...] = (), extra: str = "",
               api_base: str | None = None) -> Path:
        """A configuration beside the server's, with some of its text replaced."""
        text = wecom_config(api_base or self.cloud.base_url)
        for old, new in replace:
            assert old in text
            text = text.replace(old, new)
        folder = self.directory / name
        folder.mkdir(exist_ok=True)
        return write_config(folder, self.url, text + extra)

    async def doctor(self, path: Path, public_url: str | None = "") -> dict[str, Finding]:
        found = await asyncio.to_thread(run_checks, path, self.server.base if public_url == "" else public_url,
                                        date(2026, 12, 2))
        return {finding.check: finding for finding in found}


@pytest.fixture
async def brand(cloud: FakeWeComCloud, tmp_path: Path, http: aiohttp.ClientSession) -> AsyncIterator[Brand]:
    url = f"sqlite:///{tmp_path / 'siyu.db'}"
    upgrade(url)
    settings = load_settings(write_config(tmp_path, url, wecom_config(cloud.base_url)))
    running = await start_server(build_app(settings), http)
    yield Brand(cloud, running, tmp_path, url)
    await running.stop()


async def test_a_brand_connected_well_passes_every_check(brand: Brand) -> None:
    found = await brand.doctor(brand.config())
    assert {check: f.status for check, f in found.items()} == {
        "configuration": "ok",
        "database": "ok",
        "WeCom access token (gettoken)": "ok",
        "WeCom send path (customer contact API)": "ok",
        "WeCom callback URL handshake": "ok",
        "Official account access token": "ok",
        "Official account send path": "ok",
        "Official account callback URL handshake": "ok",
        "sandbox send path": "ok",
        "clock": "ok",
        "WeCom mass sends per customer": "info",
    }
    assert "31 this month" in found["WeCom mass sends per customer"].detail
    assert "ours: 4 a month" in found["WeCom mass sends per customer"].detail


async def test_an_untrusted_ip_is_named_with_where_to_add_it(brand: Brand) -> None:
    brand.cloud.trusted_ips = {"203.0.113.7"}
    found = await brand.doctor(brand.config(), public_url=None)
    token = found["WeCom access token (gettoken)"]
    assert token.status == "fail" and token.detail == "errcode 60020"
    assert "127.0.0.1" in token.fix_zh and "企业可信IP" in token.fix_zh and "Trusted IPs" in token.fix_en
    account = found["Official account access token"]
    assert account.detail == "errcode 40164" and "127.0.0.1" in account.fix_en and "IP白名单" in account.fix_zh
    assert found["WeCom callback URL handshake"].status == "skip"


@pytest.mark.parametrize(("replace", "errcode", "says"), [
    ((SECRET, "another-secret-of-another-app-000"), 40001, "Secret"),
    ((CORP, "ww0000000000000bad"), 40013, "企业ID"),
])
async def test_a_wrong_secret_or_corp_id_is_explained(brand: Brand, replace: tuple[str, str], errcode: int,
                                                      says: str) -> None:
    found = await brand.doctor(brand.config(replace=(replace,)), public_url=None)
    token = found["WeCom access token (gettoken)"]
    assert token.status == "fail" and token.detail == f"errcode {errcode}" and says in token.fix_zh
    assert found["WeCom send path"].status == "skip"


async def test_an_app_without_the_customer_contact_api_is_explained(brand: Brand) -> None:
    brand.cloud.fail_next(FOLLOW_USERS, 48002, errmsg="api forbidden")
    found = await brand.doctor(brand.config(), public_url=None)
    path = found["WeCom send path (customer contact API)"]
    assert path.detail == "errcode 48002" and "可调用接口的应用" in path.fix_zh and "customer-contact API" in path.fix_en


async def test_a_platform_out_of_reach_is_explained(brand: Brand) -> None:
    nowhere = f"http://127.0.0.1:{closed_port()}"
    found = await brand.doctor(brand.config(api_base=nowhere), public_url=None)
    token = found["WeCom access token (gettoken)"]
    assert token.status == "fail" and nowhere in token.fix_zh and "firewall" in token.fix_en
    assert found["clock"].status != "fail" and nowhere not in found["clock"].detail  # nothing to compare with


@pytest.mark.parametrize(("what", "status"), [
    ("token", "HTTP 403"), ("aes key", "HTTP 400"), ("path", "HTTP 404"), ("nobody", "ClientConnectorError"),
    ("another site", "body"),
])
async def test_each_way_a_callback_url_fails_its_handshake_is_explained(brand: Brand, what: str, status: str) -> None:
    public_url = brand.server.base
    replace: tuple[tuple[str, str], ...] = ()
    if what == "token":
        replace = ((f'token = "{TOKEN}"', 'token = "AnotherToken1"'),)
    elif what == "aes key":
        replace = ((AES_KEY, "B" * 43),)
    elif what == "path":
        replace = (('retry_max_seconds = 0.01\n', 'retry_max_seconds = 0.01\ncallback_path = "/wecom/elsewhere"\n'),)
    elif what == "nobody":
        public_url = f"http://127.0.0.1:{closed_port()}"
    else:
        public_url = brand.cloud.base_url  # something that answers 200, but not siyu
    found = await brand.doctor(brand.config(replace=replace), public_url=public_url)
    handshake = found["WeCom callback URL handshake"]
    assert handshake.status == "fail" and status in handshake.detail
    assert handshake.fix_zh and handshake.fix_en


async def test_a_clock_minutes_off_is_found(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    late = FakeWeComCloud(CORP, {SECRET: "siyu"}, clock=lambda: time.time() - 600)
    late.add_official_account(OA_APPID, OA_SECRET)
    await late.start()
    try:
        url = f"sqlite:///{tmp_path / 'siyu.db'}"
        upgrade(url)
        found = await asyncio.to_thread(run_checks, write_config(tmp_path, url, wecom_config(late.base_url)), None)
    finally:
        await late.close()
    clock = next(f for f in found if f.check == "clock")
    ahead = int(clock.detail.split(" s against")[0])  # the Date header counts whole seconds
    assert clock.status == "fail" and 595 <= ahead <= 610 and "NTP" in clock.fix_en and "秒" in clock.fix_zh


def test_a_database_missing_unmigrated_or_unreachable_is_explained(tmp_path: Path) -> None:
    missing = run_checks(write_config(tmp_path, f"sqlite:///{tmp_path / 'none.db'}"), None)
    assert missing[1].status == "fail" and "siyu db upgrade" in missing[1].fix_en
    (tmp_path / "old").mkdir()
    upgrade(f"sqlite:///{tmp_path / 'old' / 'siyu.db'}", "head-1")  # one migration behind
    behind = run_checks(write_config(tmp_path / "old", f"sqlite:///{tmp_path / 'old' / 'siyu.db'}"), None)
    assert behind[1].detail == "1 migration(s) not applied" and "siyu db upgrade" in behind[1].fix_zh
    (tmp_path / "pg").mkdir()
    away = run_checks(write_config(tmp_path / "pg", f"postgresql://siyu@127.0.0.1:{closed_port()}/siyu"), None)
    assert away[1].status == "fail" and "storage.url" in away[1].fix_en


def test_a_broken_configuration_is_one_failed_check_listing_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "siyu.toml"
    path.write_text("[server]\nport = 0\nbogus = 1\n")
    assert main(["doctor", "--config", str(path)]) == 1
    out = capsys.readouterr().out
    assert "✗ configuration" in out and "server.port" in out and "server.bogus: unknown key" in out
    assert "修复：" in out and "Fix:" in out and "1 check(s) failed." in out


def test_the_mass_send_cap_is_shown_beside_wecoms(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'siyu.db'}"
    settings = load_settings(write_config(tmp_path, url, "[calendar]\nwecom_mass_per_month = 30\n"))
    february = mass_cap_finding(settings, date(2027, 2, 10))
    assert february.status == "warn" and "28 this month" in february.detail and "4" in february.fix_en
    left = mass_cap_finding(settings.model_copy(update={"calendar": settings.calendar.model_copy(
        update={"wecom_mass_per_month": 0})}), date(2027, 2, 10))
    assert left.status == "info" and "left to WeCom" in left.detail
