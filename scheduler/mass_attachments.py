"""What a mass send from the calendar may carry besides its text (企业群发 attachments,
WECOM.md §4.3, add_msg_template): a link card, images and a mini-program card, at most
9 attachments in all, checked when the entry is saved so a send never fails at its hour
for a rule we knew. In a calendar file:

    attachments = { link = { title = "冬季新品", url = "https://…", desc = "…", picurl = "https://…" },
                    images = ["winter/1.jpg"],
                    miniprogram = { appid = "wx…", page = "pages/index.html", title = "…", cover = "cover.jpg" } }

- link: title (≤128 bytes) and an http(s) url (≤2048 bytes) required; desc ≤512 bytes and
  picurl (an http(s) address of the card's picture) optional;
- images: image files in `[calendar] media_dir` (JPG or PNG, ≤10 MB), uploaded as
  temporary media when the send is made (WeCom's `pic_url` takes only its own addresses);
- miniprogram: appid (wx + 16 characters), page ending in .html, title ≤64 bytes and a
  cover image file (uploaded like the images).

Pure, but for `media_problems` (reads the files; callers run it off the event loop).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scheduler.moments import image_facts

CHANNELS = ("wecom_mass", "wecom_group_mass")
MAX_ATTACHMENTS = 9
LINK_TITLE_BYTES, LINK_DESC_BYTES, URL_BYTES = 128, 512, 2048
MINI_TITLE_BYTES = 64
_APPID = re.compile(r"wx[0-9a-zA-Z]{16}")
_LINK_KEYS, _MINI_KEYS = ("title", "url", "desc", "picurl"), ("appid", "page", "title", "cover")


@dataclass(frozen=True, slots=True)
class MassLink:
    title: str
    url: str
    desc: str = ""
    picurl: str = ""


@dataclass(frozen=True, slots=True)
class MiniProgram:
    appid: str
    page: str
    title: str
    cover: str  # an image file in the media folder


@dataclass(frozen=True, slots=True)
class MassAttachments:
    link: MassLink | None = None
    images: tuple[str, ...] = ()
    miniprogram: MiniProgram | None = None

    def __bool__(self) -> bool:
        return self.link is not None or bool(self.images) or self.miniprogram is not None

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if self.link is not None:
            found["link"] = {k: v for k, v in zip(_LINK_KEYS, (self.link.title, self.link.url, self.link.desc,
                                                               self.link.picurl)) if v}
        if self.images:
            found["images"] = list(self.images)
        if self.miniprogram is not None:
            m = self.miniprogram
            found["miniprogram"] = {"appid": m.appid, "page": m.page, "title": m.title, "cover": m.cover}
        return found

    @classmethod
    def of_json(cls, data: Mapping[str, Any] | None) -> MassAttachments:
        data = data or {}
        link, mini = data.get("link"), data.get("miniprogram")
        return cls(MassLink(link["title"], link["url"], link.get("desc", ""), link.get("picurl", "")) if link else None,
                   tuple(data.get("images") or ()),
                   MiniProgram(mini["appid"], mini["page"], mini["title"], mini["cover"]) if mini else None)


def _too_long(text: str, limit: int) -> bool:
    return len(text.encode()) > limit


def _address(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://")) and " " not in value \
        and not _too_long(value, URL_BYTES)


def parse(item: Mapping[str, Any], channel: str) -> tuple[MassAttachments, list[str]]:
    """The `attachments` of an [[entries]] table: what they hold, and the problems."""
    value = item.get("attachments")
    if value is None or value == {}:
        return MassAttachments(), []
    if channel not in CHANNELS:
        return MassAttachments(), [f"attachments: only a {' or '.join(CHANNELS)} entry takes attachments"]
    if not isinstance(value, dict):
        return MassAttachments(), ["attachments: a table of link, images and miniprogram"]
    problems = [f"attachments.{key}: unknown key (known: link, images, miniprogram)"
                for key in value if key not in ("link", "images", "miniprogram")]
    link, found = _link(value.get("link"))
    problems.extend(found)
    images: tuple[str, ...] = ()
    raw = value.get("images")
    if raw is not None:
        if not isinstance(raw, list) or not all(isinstance(i, str) and i.strip() for i in raw):
            problems.append('attachments.images: a list of image files, e.g. ["winter/1.jpg"]')
        else:
            images = tuple(i.strip() for i in raw)
    mini, found = _miniprogram(value.get("miniprogram"))
    problems.extend(found)
    count = (link is not None) + len(images) + (mini is not None)
    if count > MAX_ATTACHMENTS:
        problems.append(f"attachments: at most {MAX_ATTACHMENTS} attachments (WeCom's limit), {count} given")
    return MassAttachments(link, images, mini), problems


def _link(value: Any) -> tuple[MassLink | None, list[str]]:
    if value is None:
        return None, []
    if not isinstance(value, dict):
        return None, ['attachments.link: a table, e.g. { title = "新品", url = "https://…" }']
    problems = [f"attachments.link.{k}: unknown key (known: {', '.join(_LINK_KEYS)})" for k in value if k not in _LINK_KEYS]
    title, url, desc, picurl = (value.get(k, "") for k in _LINK_KEYS)
    if not isinstance(title, str) or not title.strip():
        problems.append("attachments.link.title: required")
    elif _too_long(title.strip(), LINK_TITLE_BYTES):
        problems.append(f"attachments.link.title: at most {LINK_TITLE_BYTES} bytes")
    if not _address(url):
        problems.append("attachments.link.url: an http:// or https:// address")
    if not isinstance(desc, str):
        problems.append("attachments.link.desc: text")
    elif _too_long(desc.strip(), LINK_DESC_BYTES):
        problems.append(f"attachments.link.desc: at most {LINK_DESC_BYTES} bytes")
    if picurl and not _address(picurl):
        problems.append("attachments.link.picurl: an http:// or https:// address")
    if problems:
        return None, problems
    return MassLink(str(title).strip(), str(url), str(desc).strip(), str(picurl or "")), []


def _miniprogram(value: Any) -> tuple[MiniProgram | None, list[str]]:
    if value is None:
        return None, []
    if not isinstance(value, dict):
        return None, ['attachments.miniprogram: a table, e.g. { appid = "wx…", page = "pages/index.html", … }']
    problems = [f"attachments.miniprogram.{k}: unknown key (known: {', '.join(_MINI_KEYS)})"
                for k in value if k not in _MINI_KEYS]
    appid, page, title, cover = (value.get(k, "") for k in _MINI_KEYS)
    if not isinstance(appid, str) or not _APPID.fullmatch(appid.strip()):
        problems.append("attachments.miniprogram.appid: a mini-program AppID such as wx1234567890abcdef")
    if not isinstance(page, str) or not page.strip().endswith(".html") or " " in page.strip():
        problems.append("attachments.miniprogram.page: a page path ending in .html, e.g. pages/index.html")
    if not isinstance(title, str) or not title.strip():
        problems.append("attachments.miniprogram.title: required")
    elif _too_long(title.strip(), MINI_TITLE_BYTES):
        problems.append(f"attachments.miniprogram.title: at most {MINI_TITLE_BYTES} bytes")
    if not isinstance(cover, str) or not cover.strip():
        problems.append("attachments.miniprogram.cover: required: the cover image file")
    if problems:
        return None, problems
    return MiniProgram(str(appid).strip(), str(page).strip(), str(title).strip(), str(cover).strip()), []


def media_problems(media_dir: Path, attachments: MassAttachments) -> list[str]:
    """The image files against what WeCom takes for temporary media (JPG or PNG, ≤10 MB)."""
    problems = [f"attachments.images: {found}" for name in attachments.images
                if isinstance(found := image_facts(media_dir, name, max_pixels=None), str)]
    if attachments.miniprogram is not None:
        found = image_facts(media_dir, attachments.miniprogram.cover, max_pixels=None)
        if isinstance(found, str):
            problems.append(f"attachments.miniprogram.cover: {found}")
    return problems
