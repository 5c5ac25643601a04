"""Settings of what staff use inside WeCom ([platforms.wecom.sidebar], the customer-group
welcome templates [[platforms.wecom.group_welcomes]]), and the rules of a welcome
template, which the console checks by too (WECOM.md §9.1, §9.3)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

WELCOME_TEXT_BYTES, LINK_TITLE_BYTES, LINK_DESC_BYTES = 3000, 128, 512
MAX_WELCOMES = 100  # WeCom keeps at most 100 templates per corp
WELCOME_ID = re.compile(r"[^\s:/]{1,64}")
OLD_SDK = (
    # wx.config (jweixin 1.2.0; 1.6.0 is not supported in WeCom, doc 90547) and wx.agentConfig
    # (jwxwork 1.0.0, doc 94313), both loaded from WeCom only when the page has no `wx` yet.
    "https://res.wx.qq.com/open/js/jweixin-1.2.0.js",
    "https://open.work.weixin.qq.com/wwopen/js/jwxwork-1.0.0.js",
)


def _path(path: str) -> str:
    if not re.fullmatch(r"/[A-Za-z0-9/_-]*[A-Za-z0-9_-]", path):
        raise ValueError("must be a path such as /wecom/sidebar (letters, digits, - and _)")
    return path


def _base(url: str | None) -> str | None:
    if url is not None and not re.fullmatch(r"https?://[^/\s?#]+", url.rstrip("/")):
        raise ValueError("must be a scheme and host such as https://crm.brand.example (no path)")
    return url.rstrip("/") if url else url


class SidebarSettings(BaseModel):
    """The member card in WeCom's chat toolbar (聊天工具栏), served where WeCom is configured."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    path: Annotated[str, AfterValidator(_path)] = "/wecom/sidebar"
    # The address WeCom opens, a host on the app's trusted domain (可信域名), e.g.
    # https://crm.brand.example. Default: console.public_url, else http://host:port.
    public_url: Annotated[str | None, AfterValidator(_base)] = None
    # WeCom's OAuth2 authorize host (a test points it at the fake cloud).
    oauth_base: Annotated[str, AfterValidator(_base)] = "https://open.weixin.qq.com"
    # How long a staff member stays signed in to the sidebar after WeCom named her.
    session_minutes: int = Field(default=120, ge=5, le=720)
    # The member's last messages the card shows.
    messages: int = Field(default=5, ge=0, le=20)
    sdk_urls: tuple[str, ...] = OLD_SDK


def _bytes(text: str | None) -> int:
    return len((text or "").encode("utf-8"))


def welcome_problems(
    text: str, image_url: str | None, link_title: str | None, link_url: str | None, link_desc: str | None,
    link_picurl: str | None,
) -> list[str]:
    """What WeCom would refuse in a group welcome template (doc 92366/96357)."""
    problems = []
    if not text.strip() and not image_url and not link_url:
        problems.append("text: write a text, or give an image or a link (not everything may be empty)")
    if _bytes(text) > WELCOME_TEXT_BYTES:
        problems.append(f"text: at most {WELCOME_TEXT_BYTES} bytes (about {WELCOME_TEXT_BYTES // 3} Chinese characters)")
    if image_url and link_url:
        problems.append("image_url: WeCom sends only one of an image and a link: leave one out")
    for name, value in (("image_url", image_url), ("link_url", link_url), ("link_picurl", link_picurl)):
        if value and not re.match(r"https?://\S+$", value):
            problems.append(f"{name}: must be an http:// or https:// address")
    if link_url and not (link_title or "").strip():
        problems.append("link_title: a link needs a title")
    if (link_title or link_desc or link_picurl) and not link_url:
        problems.append("link_url: a link's title, description or picture needs the link itself")
    if _bytes(link_title) > LINK_TITLE_BYTES:
        problems.append(f"link_title: at most {LINK_TITLE_BYTES} bytes")
    if _bytes(link_desc) > LINK_DESC_BYTES:
        problems.append(f"link_desc: at most {LINK_DESC_BYTES} bytes")
    return problems


class GroupWelcomeSettings(BaseModel):
    """A customer-group welcome template kept in WeCom (入群欢迎语素材): group owners pick
    it in their client. `%NICKNAME%` in the text becomes the newcomer's name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=WELCOME_ID.pattern)  # ours, to find it again; never shown
    text: str = ""
    image_url: str | None = None
    link_title: str | None = None
    link_url: str | None = None
    link_desc: str | None = None
    link_picurl: str | None = None
    notify: bool = True  # tell group owners the template is there

    @model_validator(mode="after")
    def _as_wecom_takes_it(self) -> GroupWelcomeSettings:
        if problems := welcome_problems(self.text, self.image_url, self.link_title, self.link_url,
                                        self.link_desc, self.link_picurl):
            raise ValueError("; ".join(problems))
        return self


def _unique_ids(welcomes: list[GroupWelcomeSettings]) -> list[GroupWelcomeSettings]:
    ids = [w.id for w in welcomes]
    if twice := sorted({i for i in ids if ids.count(i) > 1}):
        raise ValueError(f"ids used twice: {', '.join(twice)}")
    return welcomes


GroupWelcomes = Annotated[list[GroupWelcomeSettings], Field(max_length=MAX_WELCOMES), AfterValidator(_unique_ids)]
