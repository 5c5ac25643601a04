"""`siyu doctor`'s official-account checks: the access token, the API the sender needs,
and the callback URL's handshake from outside (WECOM.md §5)."""

from __future__ import annotations

import re
import secrets
import time

import aiohttp

from bot.platforms.wecom.client import OfficialAccountClient
from bot.platforms.wecom.crypto import sha1_signature
from bot.platforms.wecom.doctor import TIMEOUT, explain, handshake
from bot.platforms.wecom.errors import WeComApiError, WeComTransportError
from bot.settings.model import OfficialAccountSettings
from bot.shared.findings import Finding

_INVALID_IP = re.compile(r"invalid ip ([0-9a-fA-F.:]+)")

OA_FIXES: dict[int, tuple[str, str]] = {
    40164: (
        "本服务器的出口 IP{ip}不在公众号的 IP 白名单中：公众号后台 → 设置与开发 → 基本配置 → IP白名单，加入该 IP。",
        "This server's outgoing IP{ip} is not on the account's IP whitelist: official account console → "
        "设置与开发 → 基本配置 → IP白名单 (IP whitelist) → add it.",
    ),
    40013: (
        "platforms.oa.app_id 不对：在 设置与开发 → 基本配置 → 开发者ID(AppID) 查看（以 wx 开头）。",
        "platforms.oa.app_id is wrong: see 设置与开发 → 基本配置 → 开发者ID (AppID), starting with wx.",
    ),
    40001: (
        "platforms.oa.secret 不对或已重置：在 设置与开发 → 基本配置 → 开发者密码(AppSecret) 重置后填入。",
        "platforms.oa.secret is wrong or was reset: reset 开发者密码 (AppSecret) under 设置与开发 → 基本配置 and "
        "put the new one in.",
    ),
    40125: (
        "platforms.oa.secret 不是这个公众号的 AppSecret：在 设置与开发 → 基本配置 查看。",
        "platforms.oa.secret is not this account's AppSecret: see 设置与开发 → 基本配置.",
    ),
    48001: (
        "公众号没有这个接口的权限：客服消息需要已认证的服务号。",
        "The account may not call this API: customer-service messages need a verified service account (服务号).",
    ),
}


def _with_ip(error: WeComApiError) -> WeComApiError:
    """40164 names the address in its own words; put it where `explain` looks."""
    found = _INVALID_IP.search(error.errmsg)
    return WeComApiError(error.errcode, f"from ip: {found.group(1)}", error.path) if found else error


async def oa_findings(
    http: aiohttp.ClientSession, settings: OfficialAccountSettings, public_url: str | None
) -> list[Finding]:
    client = OfficialAccountClient(http, settings.api_base, settings.app_id, settings.secret.get_secret_value(),
                                   attempts=1, timeout=TIMEOUT)
    found: list[Finding] = []
    for check, call in (
        ("Official account access token", client.access_token),
        ("Official account send path", lambda: client.call("GET", "/cgi-bin/getcallbackip")),
    ):
        try:
            await call()
            found.append(Finding.ok(check, f"app {settings.app_id}"))
        except WeComApiError as error:
            found.append(explain(check, _with_ip(error), OA_FIXES, settings.api_base))
            break
        except WeComTransportError as error:
            found.append(explain(check, error, OA_FIXES, settings.api_base))
            break
    found.append(await oa_handshake(http, settings, public_url))
    return found


async def oa_handshake(http: aiohttp.ClientSession, settings: OfficialAccountSettings,
                       public_url: str | None) -> Finding:
    """GET the callback URL as the account's console does: signed, echostr echoed verbatim."""
    check = "Official account callback URL handshake"
    if not public_url:
        return Finding.skip(check, "give --public-url https://your.domain to call it from outside")
    timestamp, nonce, echostr = str(int(time.time())), secrets.token_hex(5), secrets.token_hex(8)
    query = {"signature": sha1_signature(settings.token.get_secret_value(), timestamp, nonce),
             "timestamp": timestamp, "nonce": nonce, "echostr": echostr}
    return await handshake(http, check, public_url.rstrip("/") + settings.callback_path, query, echostr)
