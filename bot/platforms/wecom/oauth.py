"""Who opened a page inside WeCom: the OAuth2 code exchange (WECOM.md §9.1; docs 91022,
91023 and their twins 96441, 96442).

The page sends the browser to WeCom's authorize URL; WeCom sends it back with a `code`
(one use, five minutes); `auth/getuserinfo` turns the code into the member's `userid`.
A non-member gets an `openid` instead (and an `external_userid` when she is a customer):
such a visitor is nobody we let in. `snsapi_base` is silent: no consent screen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

from bot.platforms.wecom.client import WeComClient

AUTHORIZE_PATH = "/connect/oauth2/authorize"
USERINFO_PATH = "/cgi-bin/auth/getuserinfo"
STATE = re.compile(r"[A-Za-z0-9]{1,128}")
MAX_CODE_BYTES = 512
INVALID_CODE = 40029  # used, expired or made up
UNTRUSTED_REDIRECT = 50001  # the redirect domain is not the app's trusted domain


def authorize_url(oauth_base: str, corp_id: str, agent_id: int, redirect_uri: str, state: str) -> str:
    """Where to send the browser; WeCom comes back to `redirect_uri?code=…&state=…`."""
    if not STATE.fullmatch(state):
        raise ValueError("state is 1..128 letters and digits")
    query = urlencode({
        "appid": corp_id, "redirect_uri": redirect_uri, "response_type": "code",
        "scope": "snsapi_base", "state": state, "agentid": agent_id,
    })
    return f"{oauth_base.rstrip('/')}{AUTHORIZE_PATH}?{query}#wechat_redirect"


def plausible_code(code: str) -> bool:
    """A code worth asking WeCom about (anything else is refused without a call)."""
    return 0 < len(code.encode()) <= MAX_CODE_BYTES and code.isprintable() and " " not in code


@dataclass(frozen=True, slots=True)
class Visitor:
    userid: str | None  # a member of the corp
    openid: str | None = None  # someone else
    external_userid: str | None = None  # someone else who is a customer


async def visitor_of(client: WeComClient, code: str) -> Visitor:
    """The person a code was issued to. Raises WeComApiError (40029 for a bad code)."""
    data = await client.call("GET", USERINFO_PATH, query={"code": code})
    # Older answers spelt it UserId; a linked corp's member comes as "CorpId/userid".
    userid = data.get("userid") or data.get("UserId")
    return Visitor(
        str(userid) if userid else None,
        str(data["openid"]) if data.get("openid") else None,
        str(data["external_userid"]) if data.get("external_userid") else None,
    )
