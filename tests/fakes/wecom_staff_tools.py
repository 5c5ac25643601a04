"""What the fake WeCom cloud knows for pages staff open inside WeCom (WECOM.md §9.1):
OAuth2 (the authorize redirect and `auth/getuserinfo`), the two JS-SDK tickets, and
media uploads for Moments (§9.2).

Codes work once and die after 5 minutes unused (40029 otherwise); the authorize step
refuses a redirect outside the app's trusted domain (50001 when the code is exchanged,
as the docs put it). Tickets live 7200 s by the injected clock, and WeCom allows 400
fetches an hour per corp and 100 per app (45009 beyond).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from tests.fakes.wecom_state import Json, Refusal

CODE_TTL = 300.0
TICKET_TTL = 7200
TICKET_FETCHES_PER_HOUR = {"jsapi": 400, "agent_config": 100}
MEDIA_TTL = 3 * 86400.0
IMAGE_MAX_BYTES = 10 * 1024 * 1024


@dataclass(slots=True)
class _Code:
    issued_at: float
    userid: str | None
    openid: str | None
    trusted: bool


class StaffTools:
    """Mixed into the fake cloud: `clock`, `corp_id`, `staff` and `customers` come from it."""

    clock: Callable[[], float]
    corp_id: str
    staff: set[str]

    def init_staff_tools(self, agent_id: int) -> None:
        self.agent_id = agent_id
        self.trusted_domain = "127.0.0.1"  # the app's 可信域名 (subdomains included)
        self.client_user: str | None = None  # who is signed in to the WeCom client opening pages
        self.client_openid: str | None = None  # ...or a WeChat user who is not a member
        self._codes: dict[str, _Code] = {}
        self.tickets: dict[str, tuple[str, float]] = {}  # kind -> (ticket, issued at)
        self._ticket_fetches: dict[str, list[float]] = {"jsapi": [], "agent_config": []}  # within the hour
        self._tickets_issued: dict[str, int] = {"jsapi": 0, "agent_config": 0}
        self.media: dict[str, tuple[str, bytes, float]] = {}  # media_id -> (filename, content, uploaded at)

    # -- OAuth2 --------------------------------------------------------------------------

    def authorize(self, query: dict[str, str]) -> tuple[int, str]:
        """The browser at open.weixin.qq.com's authorize URL: (302, where to) or (400, why)."""
        if query.get("appid") != self.corp_id:
            return 400, "appid is not this corp"
        if query.get("response_type") != "code" or query.get("scope") not in ("snsapi_base", "snsapi_privateinfo"):
            return 400, "response_type must be code and scope snsapi_base or snsapi_privateinfo"
        redirect, state = query.get("redirect_uri", ""), query.get("state", "")
        if not redirect.startswith(("http://", "https://")):
            return 400, "redirect_uri must be an absolute http(s) URL"
        if len(state.encode()) > 128 or not state.isalnum():
            return 400, "state is a-zA-Z0-9, at most 128 bytes"
        host = urlsplit(redirect).hostname or ""
        trusted = host == self.trusted_domain or host.endswith("." + self.trusted_domain)
        code = secrets.token_urlsafe(32)
        self._codes[code] = _Code(self.clock(), self.client_user, self.client_openid, trusted)
        joiner = "&" if "?" in redirect else "?"
        return 302, f"{redirect}{joiner}{urlencode({'code': code, 'state': state})}"

    def getuserinfo(self, app: str, query: Json, body: Json) -> Json:
        code = self._codes.pop(str(query.get("code", "")), None)  # once, used or not
        if code is None or self.clock() - code.issued_at > CODE_TTL:
            raise Refusal(40029, "invalid code")
        if not code.trusted:
            raise Refusal(50001, "redirect_url not match the trusted domain")
        if code.userid is not None:
            return {"errcode": 0, "errmsg": "ok", "userid": code.userid}
        return {"errcode": 0, "errmsg": "ok", "openid": code.openid or "oFake" + secrets.token_hex(8)}

    # -- tickets -------------------------------------------------------------------------

    def jsapi_ticket(self, app: str, query: Json, body: Json) -> Json:
        return self._ticket("jsapi")

    def agent_ticket(self, app: str, query: Json, body: Json) -> Json:
        if query.get("type") != "agent_config":
            raise Refusal(40058, "invalid type")
        return self._ticket("agent_config")

    def ticket_value(self, kind: str) -> str | None:
        """The ticket a page must be signed with now (None: never fetched or expired)."""
        issued = self.tickets.get(kind)
        return issued[0] if issued and self.clock() - issued[1] < TICKET_TTL else None

    def ticket_fetches(self, kind: str) -> int:
        return self._tickets_issued[kind]

    def _ticket(self, kind: str) -> Json:
        now = self.clock()
        recent = [t for t in self._ticket_fetches[kind] if now - t < 3600]
        if len(recent) >= TICKET_FETCHES_PER_HOUR[kind]:
            raise Refusal(45009, "api freq out of limit")
        self._ticket_fetches[kind] = [*recent, now]
        self._tickets_issued[kind] += 1
        # Each fetch hands out a new ticket; the previous one stays good until it expires.
        ticket = secrets.token_urlsafe(60)
        self.tickets[kind] = (ticket, now)
        return {"errcode": 0, "errmsg": "ok", "ticket": ticket, "expires_in": TICKET_TTL}

    # -- media for Moments ---------------------------------------------------------------

    def upload_attachment(self, query: Json, files: dict[str, tuple[str, bytes, str]]) -> Json:
        if query.get("media_type") not in ("image", "video") or query.get("attachment_type") not in ("1", "2"):
            raise Refusal(40058, "media_type is image or video, attachment_type 1 or 2")
        if "media" not in files:
            raise Refusal(41005, "media data missing")
        filename, content, content_type = files["media"]
        if query["media_type"] == "image":
            if not content_type.startswith("image/") or not content[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1", b"\xff\xd8\xff\xdb"):
                raise Refusal(40005, "invalid file type")
            if len(content) > IMAGE_MAX_BYTES:
                raise Refusal(40006, "invalid file size")
        media_id = "3" + secrets.token_urlsafe(40)
        self.media[media_id] = (filename, content, self.clock())
        return {"errcode": 0, "errmsg": "ok", "type": query["media_type"], "media_id": media_id,
                "created_at": str(int(self.clock()))}

    def upload_media(self, query: Json, files: dict[str, tuple[str, bytes, str]]) -> Json:
        """media/upload, temporary media (valid 3 days); images only here: JPG or PNG, ≤10 MB."""
        if query.get("type") not in ("image", "voice", "video", "file"):
            raise Refusal(40004, "invalid media type")
        if "media" not in files:
            raise Refusal(41005, "media data missing")
        filename, content, _ = files["media"]
        if query["type"] == "image":
            if content[:4] not in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1", b"\xff\xd8\xff\xdb"):
                raise Refusal(40005, "invalid file type")
            if len(content) > IMAGE_MAX_BYTES:
                raise Refusal(40006, "invalid file size")
        media_id = "3" + secrets.token_urlsafe(40)
        self.media[media_id] = (filename, content, self.clock())
        return {"errcode": 0, "errmsg": "ok", "type": query["type"], "media_id": media_id,
                "created_at": str(int(self.clock()))}

    def media_valid(self, media_id: str) -> bool:
        found = self.media.get(media_id)
        return found is not None and self.clock() - found[2] < MEDIA_TTL
