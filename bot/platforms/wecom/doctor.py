"""`siyu doctor`'s WeCom checks: the access token, the customer-contact API the senders
need, the callback URL's verification handshake from outside, and WeCom's clock.

Each failure says what WeCom answered and how to put it right, in Chinese and English.
The errcodes a brand meets while connecting (WECOM.md §4.10) are explained one by one.
"""

from __future__ import annotations

import re
import secrets
import time
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

import aiohttp

from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.crypto import CallbackCrypto, sha1_signature
from bot.platforms.wecom.errors import WeComApiError, WeComTransportError
from bot.settings.model import WeComSettings
from bot.shared.findings import Finding

TIMEOUT = aiohttp.ClientTimeout(total=10)
# WeCom names the caller's address in 60020's errmsg ("… from ip: 1.2.3.4, more info …").
_FROM_IP = re.compile(r"from ip:\s*([0-9a-fA-F.:]+)")

# errcode → (中文, English): how to fix what WeCom refused.
WECOM_FIXES: dict[int, tuple[str, str]] = {
    60020: (
        "本服务器的出口 IP{ip}不在企业可信IP中：企业微信管理后台 → 应用管理 → 本应用 → 企业可信IP → 配置，加入该 IP。",
        "This server's outgoing IP{ip} is not a trusted IP of the app: WeCom admin console → 应用管理 (Apps) → "
        "your app → 企业可信IP (Trusted IPs) → add it.",
    ),
    40001: (
        "platforms.wecom.secret 不是本应用的 Secret：在 应用管理 → 本应用 → Secret 查看并重新填写（每个应用的 Secret "
        "不同）。连续用错 Secret 会让本 IP 被封禁一小时。",
        "platforms.wecom.secret is not this app's Secret: copy it again from 应用管理 (Apps) → your app → Secret "
        "(each app has its own). Repeated wrong secrets get this IP blocked for an hour.",
    ),
    40013: (
        "platforms.wecom.corp_id 不对：在 我的企业 → 企业信息 → 企业ID 查看（以 ww 开头）。",
        "platforms.wecom.corp_id is wrong: see 我的企业 (My Company) → 企业信息 → 企业ID (it starts with ww).",
    ),
    48002: (
        "本应用无权调用客户联系接口：客户联系 → 客户 → API → 可调用接口的应用，加入本应用；并确认应用可见范围包含"
        "负责客户的成员。",
        "The app may not call the customer-contact API: 客户联系 (Customer Contact) → 客户 → API → 可调用接口的应用 "
        "(apps that may call it) → add this app, and make sure its visible range covers the staff who own customers.",
    ),
}


def explain(check: str, error: WeComApiError | WeComTransportError, fixes: dict[int, tuple[str, str]],
            api_base: str) -> Finding:
    """A failed call as a finding: the errcode's fix when we know it."""
    if isinstance(error, WeComTransportError):
        return Finding.fail(
            check, f"{error.path}: {error.reason}",
            f"连不上 {api_base}：检查本机能否访问外网（DNS、防火墙、出口代理）以及 api_base 是否写对。",
            f"Cannot reach {api_base}: check that this machine can reach the internet (DNS, firewall, "
            "outgoing proxy) and that api_base is right.",
        )
    known = fixes.get(error.errcode)
    if known is None:
        return Finding.fail(
            check, f"errcode {error.errcode}: {error.errmsg}",
            f"请按错误码 {error.errcode} 查看企业微信/微信的错误码说明。",
            f"Look up errcode {error.errcode} in the platform's error code list.",
        )
    found = _FROM_IP.search(error.errmsg)
    ip = f" {found.group(1)} " if found else " "
    return Finding.fail(check, f"errcode {error.errcode}", known[0].format(ip=ip), known[1].format(ip=ip))


async def wecom_findings(http: aiohttp.ClientSession, settings: WeComSettings, public_url: str | None) -> list[Finding]:
    client = WeComClient(http, settings.api_base, settings.corp_id, settings.secret.get_secret_value(),
                         attempts=1, timeout=TIMEOUT)
    found: list[Finding] = []
    try:
        await client.access_token()
        found.append(Finding.ok("WeCom access token (gettoken)", f"corp {settings.corp_id}"))
    except (WeComApiError, WeComTransportError) as error:
        found.append(explain("WeCom access token (gettoken)", error, WECOM_FIXES, settings.api_base))
        found.append(Finding.skip("WeCom send path", "needs an access token"))
    else:
        try:
            await client.call("GET", "/cgi-bin/externalcontact/get_follow_user_list")
            found.append(Finding.ok("WeCom send path (customer contact API)"))
        except (WeComApiError, WeComTransportError) as error:
            found.append(explain("WeCom send path (customer contact API)", error, WECOM_FIXES, settings.api_base))
    found.append(await wecom_handshake(http, settings, public_url))
    return found


async def wecom_handshake(http: aiohttp.ClientSession, settings: WeComSettings, public_url: str | None) -> Finding:
    """GET the callback URL as WeCom does when the URL is saved: an encrypted echostr,
    signed; the answer must be the bare plaintext."""
    check = "WeCom callback URL handshake"
    if not public_url:
        return Finding.skip(check, "give --public-url https://your.domain to call it from outside")
    crypto = CallbackCrypto(settings.token.get_secret_value(), settings.encoding_aes_key.get_secret_value(),
                            settings.corp_id)
    plain = secrets.token_hex(8)
    echostr = crypto.encrypt(plain.encode())
    timestamp, nonce = str(int(time.time())), secrets.token_hex(5)
    query = {"msg_signature": sha1_signature(settings.token.get_secret_value(), timestamp, nonce, echostr),
             "timestamp": timestamp, "nonce": nonce, "echostr": echostr}
    return await handshake(http, check, public_url.rstrip("/") + settings.callback_path, query, plain)


async def handshake(http: aiohttp.ClientSession, check: str, url: str, query: dict[str, str], expected: str) -> Finding:
    """Call `url` with `query`; the platform's check passes when the body is `expected`."""
    try:
        async with http.get(f"{url}?{urlencode(query)}", timeout=TIMEOUT, allow_redirects=False) as response:
            status, body = response.status, (await response.read()).decode("utf-8", "replace").strip()
    except aiohttp.ClientSSLError as error:
        return Finding.fail(
            check, f"TLS: {error}",
            f"{url} 的 HTTPS 证书无效：平台只接受受信任 CA 签发、域名匹配、未过期的证书（nginx 的 ssl_certificate）。",
            f"{url} has an invalid HTTPS certificate: the platform accepts only a trusted, matching, unexpired "
            "certificate (nginx's ssl_certificate).",
        )
    except (aiohttp.ClientError, TimeoutError) as error:
        return Finding.fail(
            check, f"{type(error).__name__}: {error}",
            f"从外部连不上 {url}：确认 siyu 在运行、nginx 转发了这个路径、防火墙放行 443 端口、域名解析到本服务器。",
            f"{url} cannot be reached from outside: check that siyu runs, nginx forwards this path, the firewall "
            "lets port 443 in and the domain resolves to this server.",
        )
    if status == 200 and body == expected:
        return Finding.ok(check, url)
    if status == 404:
        return Finding.fail(
            check, f"{url}: HTTP 404",
            "这个地址没有 siyu 的回调：nginx 没有转发这个路径，或 callback_path 与平台后台填的 URL 不一致，"
            "或处理它的进程 role = \"worker\"（不接收回调）。",
            "No siyu callback at this address: nginx does not forward the path, or callback_path differs from "
            "the URL saved in the platform's console, or the process behind it has role = \"worker\".",
        )
    if status == 403:
        return Finding.fail(
            check, f"{url}: HTTP 403 (signature refused)",
            "运行中的 siyu 用的 Token 与本配置不同：修改配置后重启服务，并确认平台后台填的 Token 与配置一致。",
            "The running siyu checks a different Token than this configuration: restart it after changing the "
            "configuration, and make sure the console's Token matches.",
        )
    if status == 400:
        return Finding.fail(
            check, f"{url}: HTTP 400 ({body[:80]})",
            "运行中的 siyu 解不开这个 echostr：EncodingAESKey 或 corp_id / AppID 与本配置不同，改后请重启。",
            "The running siyu cannot decrypt the echostr: its EncodingAESKey or corp_id / AppID differs from this "
            "configuration; restart it after a change.",
        )
    if status in (502, 503, 504):
        return Finding.fail(
            check, f"{url}: HTTP {status}",
            "反向代理后面的 siyu 没有回答：确认 siyu 进程在运行（systemctl status），以及 nginx upstream 的端口。",
            "The reverse proxy got no answer from siyu: check that it runs (systemctl status) and nginx's "
            "upstream port.",
        )
    return Finding.fail(
        check, f"{url}: HTTP {status}, body {body[:80]!r}",
        "回答的不是 echostr：这个地址后面不是 siyu（也许是别的网站或登录页）。",
        "The answer is not the echostr: something other than siyu answers at this address (another site, a login page).",
    )


async def clock_skew(http: aiohttp.ClientSession, api_base: str) -> float | None:
    """Seconds our clock runs ahead of the platform's (its HTTP Date header), or None
    when it cannot be read."""
    try:
        async with http.get(api_base + "/", timeout=TIMEOUT) as response:
            date = response.headers.get("Date")
    except (aiohttp.ClientError, TimeoutError):
        return None
    if not date:
        return None
    try:
        theirs = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return None
    return time.time() - theirs
