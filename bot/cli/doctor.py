"""`siyu doctor`: what a brand gets wrong when connecting, found and explained.

The configuration, the database (reachable, migrated), each platform (its token, its
send path, the callback URL's handshake from outside given --public-url), the clock
against the platform's, and the mass-send caps beside the platform's. Each problem says
how to fix it in Chinese and English. Exit 1 when a check failed.
"""

from __future__ import annotations

import asyncio
import calendar
from dataclasses import asdict
from datetime import date
from pathlib import Path

import aiohttp
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.cli.check import problems_in
from bot.cli.output import print_json
from bot.platforms.oa.doctor import oa_findings
from bot.platforms.wecom.doctor import clock_skew, wecom_findings
from bot.settings.model import Settings
from bot.shared.findings import Finding
from storage.engine import create_sync_engine, is_sqlite
from storage.migrate import pending_revisions

CLOCK_TOLERANCE = 30.0  # seconds
MARKS = {"ok": "✓", "fail": "✗", "warn": "!", "skip": "-", "info": "i"}


def doctor(path: Path, public_url: str | None, as_json: bool, today: date | None = None) -> int:
    findings = run_checks(path, public_url, today)
    if as_json:
        print_json([asdict(finding) for finding in findings])
    else:
        print_findings(path, findings)
    return 1 if any(finding.status == "fail" for finding in findings) else 0


def run_checks(path: Path, public_url: str | None, today: date | None = None) -> list[Finding]:
    settings, problems = problems_in(path)
    if problems or settings is None:
        return [Finding.fail(
            "configuration", "\n".join(problems),
            "按上面每一行改正配置文件（siyu check 会列出同样的问题）。",
            "Correct the configuration as each line above says (`siyu check` lists the same problems).",
        )]
    findings = [Finding.ok("configuration", str(path)), *database_findings(settings.storage.url)]
    findings += asyncio.run(platform_findings(settings, public_url))
    if settings.platforms.wecom is not None:
        findings.append(mass_cap_finding(settings, today or date.today()))
    return findings


def database_findings(url: str) -> list[Finding]:
    check = "database"
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:" and not Path(database).exists():
            return [Finding.fail(
                check, f"no database file at {database}",
                "还没有数据库：运行 siyu db upgrade（siyu serve 启动时也会创建）。",
                "There is no database yet: run `siyu db upgrade` (siyu serve creates it on start too).",
            )]
    engine = create_sync_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        return [Finding.fail(
            check, f"{type(error).__name__}: {str(error).splitlines()[0]}",
            "连不上数据库：检查 storage.url（主机、端口、库名、用户名和密码）、数据库是否在运行、本机能否访问它。",
            "Cannot connect to the database: check storage.url (host, port, name, user and password), that the "
            "server runs, and that this machine may reach it.",
        )]
    finally:
        engine.dispose()
    pending = pending_revisions(url)
    if pending:
        return [Finding.fail(
            check, f"{len(pending)} migration(s) not applied",
            "数据库结构不是最新：运行 siyu db upgrade。",
            "The database schema is behind this version: run `siyu db upgrade`.",
        )]
    return [Finding.ok(check, f"{make_url(url).get_backend_name()}, migrated")]


async def platform_findings(settings: Settings, public_url: str | None) -> list[Finding]:
    platforms = settings.platforms
    findings: list[Finding] = []
    async with aiohttp.ClientSession() as http:
        if platforms.wecom is not None:
            findings += await wecom_findings(http, platforms.wecom, public_url)
        if platforms.oa is not None:
            findings += await oa_findings(http, platforms.oa, public_url)
        if platforms.sandbox.enabled:
            findings.append(Finding.ok("sandbox send path", "in-process"))
        bases = [p.api_base for p in (platforms.wecom, platforms.oa) if p is not None]
        findings.append(await clock_finding(http, bases))
    return findings


async def clock_finding(http: aiohttp.ClientSession, api_bases: list[str]) -> Finding:
    check = "clock"
    for base in api_bases:
        skew = await clock_skew(http, base)
        if skew is None:
            continue
        if abs(skew) > CLOCK_TOLERANCE:
            way = "快" if skew > 0 else "慢"
            return Finding.fail(
                check, f"{skew:+.0f} s against {base}",
                f"本机时钟比平台{way} {abs(skew):.0f} 秒：回调签名带时间戳，定时任务和免打扰时段也按本机时钟。"
                "开启 NTP 同步（timedatectl set-ntp true，或安装 chrony）。",
                f"This machine's clock is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the platform's: "
                "callback signatures carry timestamps, and scheduled jobs and quiet hours follow this clock. "
                "Turn on NTP (timedatectl set-ntp true, or install chrony).",
            )
        return Finding.ok(check, f"{skew:+.1f} s against {base}")
    return await ntp_finding(check)


async def ntp_finding(check: str) -> Finding:
    """Without a platform to compare with: whether systemd says the clock is synchronized."""
    try:
        process = await asyncio.create_subprocess_exec(
            "timedatectl", "show", "--property=NTPSynchronized", "--value",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )
        answer = (await process.communicate())[0].decode().strip()
    except OSError:
        answer = ""
    if answer == "yes":
        return Finding.ok(check, "synchronized by NTP (timedatectl)")
    if answer == "no":
        return Finding.warn(
            check, "timedatectl: not synchronized",
            "本机时钟没有 NTP 同步：timedatectl set-ntp true，或安装 chrony。",
            "This machine's clock is not synchronized: timedatectl set-ntp true, or install chrony.",
        )
    return Finding.skip(check, "no platform answered to compare against, and timedatectl could not tell")


def mass_cap_finding(settings: Settings, today: date) -> Finding:
    """Our monthly cap on WeCom mass sends per customer beside WeCom's own (WECOM.md §9.4)."""
    check = "WeCom mass sends per customer"
    ours = settings.calendar.wecom_mass_per_month
    days = calendar.monthrange(today.year, today.month)[1]
    theirs = f"WeCom's: {days} this month (as many as the month has days), or 7 a week / 1 a day if an admin chose so"
    weekly = ", ".join(f"{layer} {n}" for layer, n in settings.delivery.weekly_caps.items())
    others = settings.delivery.default_weekly_cap
    marketing = f"; marketing per member per 7 days: {weekly or 'none'}, other layers {others if others is not None else 'no cap'}"
    if ours == 0:
        return Finding.info(check, f"ours: none (left to WeCom); {theirs}{marketing}")
    if ours >= 28:
        return Finding.warn(
            check, f"ours: {ours} a month; {theirs}",
            "calendar.wecom_mass_per_month 不低于企业微信的上限，等于没有自己的上限；会员一个月收到几十条群发会流失，"
            "建议每月 4 条左右。",
            "calendar.wecom_mass_per_month is not below WeCom's own cap, so it caps nothing; members who get dozens "
            "of mass messages a month leave. About 4 a month is humane.",
        )
    return Finding.info(check, f"ours: {ours} a month ([calendar] wecom_mass_per_month); {theirs}{marketing}")


def print_findings(path: Path, findings: list[Finding]) -> None:
    print(f"siyu doctor: {path}")
    for finding in findings:
        shown = f" — {finding.detail}" if finding.detail and finding.status != "fail" else ""
        print(f"  {MARKS[finding.status]} {finding.check}{shown}")
        if finding.status == "fail" and finding.detail:
            for line in finding.detail.splitlines():
                print(f"      {line}")
        if finding.fix_zh:
            print(f"      修复：{finding.fix_zh}")
            print(f"      Fix: {finding.fix_en}")
    failed = sum(finding.status == "fail" for finding in findings)
    print(f"{failed} check(s) failed." if failed else "Every check passed.")
