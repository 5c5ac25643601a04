"""客户朋友圈 (Moments) as a calendar channel: what an entry may hold and WeCom's limits
on a post (WECOM.md §9.2; doc 95094/96351 add_moment_task, doc 96347 upload_attachment),
checked when the entry is saved, so a post never fails at its hour for a rule we knew.

- text: at most 2000 characters and 4000 bytes;
- attachments: up to 9 images, or one link (title ≤64 bytes, http(s) URL, a cover image),
  never both; an image is a JPG or PNG file of at most 10 MB and 1,555,200 pixels,
  named relative to `[calendar] media_dir`;
- who sees it: WeCom shows a post to customers by corp tag, so the audience is `tags`
  (those customers) or `everyone`; `stores` names the staff who publish it (those
  stores' staff). Layers and exclusions have no corp-tag form and are refused.

Everything here is pure except `image_facts` and `media_problems`, which read files
(callers run them off the event loop).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.audiences import Audience

CHANNEL = "wecom_moments"
TEXT_CHARS, TEXT_BYTES = 2000, 4000
MAX_IMAGES = 9
IMAGE_BYTES = 10 * 1024 * 1024
IMAGE_PIXELS = 1_555_200
LINK_TITLE_BYTES = 64
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png"}
NOT_FOR_MOMENTS = ("layers", "lifecycle", "exclude_tags")


@dataclass(frozen=True, slots=True)
class MomentLink:
    title: str
    url: str
    cover: str  # an image file, like `images`


def parse_attachments(item: Mapping[str, Any], channel: str) -> tuple[tuple[str, ...], MomentLink | None, list[str]]:
    """`images` and `link` of an [[entries]] table: what they hold, and the problems."""
    images, link_value = item.get("images"), item.get("link")
    problems: list[str] = []
    if channel != CHANNEL:
        problems.extend(f"{key}: only a {CHANNEL} entry takes {key}" for key in ("images", "link") if item.get(key))
        return (), None, problems
    names: tuple[str, ...] = ()
    if images is not None:
        if not isinstance(images, list) or not all(isinstance(i, str) and i.strip() for i in images):
            problems.append('images: a list of image files, e.g. ["spring/1.jpg"]')
        elif len(images) > MAX_IMAGES:
            problems.append(f"images: at most {MAX_IMAGES} (WeCom's limit), {len(images)} given")
        else:
            names = tuple(i.strip() for i in images)
    link: MomentLink | None = None
    if link_value is not None:
        link, found = _link(link_value)
        problems.extend(found)
    if names and link_value is not None:
        problems.append("link: a post carries images or one link, not both (WeCom's rule)")
    return names, link, problems


def _link(value: Any) -> tuple[MomentLink | None, list[str]]:
    if not isinstance(value, dict):
        return None, ['link: a table, e.g. link = { title = "新品", url = "https://…", cover = "cover.jpg" }']
    problems = [f"link.{key}: unknown key (known: title, url, cover)" for key in value if key not in ("title", "url", "cover")]
    title, url, cover = (value.get(k) for k in ("title", "url", "cover"))
    if not isinstance(title, str) or not title.strip():
        problems.append("link.title: required")
    elif len(title.encode()) > LINK_TITLE_BYTES:
        problems.append(f"link.title: at most {LINK_TITLE_BYTES} bytes (about {LINK_TITLE_BYTES // 3} Chinese characters)")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or " " in url:
        problems.append("link.url: an http:// or https:// address")
    if not isinstance(cover, str) or not cover.strip():
        problems.append("link.cover: required: the cover image file (WeCom shows it beside the title)")
    if problems:
        return None, problems
    return MomentLink(str(title).strip(), str(url), str(cover).strip()), []


def text_problems(text: str) -> list[str]:
    if len(text) > TEXT_CHARS or len(text.encode()) > TEXT_BYTES:
        return [f"the text is {len(text)} characters ({len(text.encode())} bytes); a Moments post takes at most "
                f"{TEXT_CHARS} characters and {TEXT_BYTES} bytes"]
    return []


def audience_problems(audience: Audience) -> list[str]:
    problems = [f"audience.{key}: a Moments post is shown by corp tags only: use tags (or everyone = true)"
                for key in NOT_FOR_MOMENTS if getattr(audience, key)]
    if not audience.tags and not audience.everyone:
        problems.append("audience: say which customers see it: tags = [...] (by corp tag) or everyone = true")
    return problems


def attachments_json(images: Sequence[str], link: MomentLink | None) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if images:
        found["images"] = list(images)
    if link is not None:
        found["link"] = {"title": link.title, "url": link.url, "cover": link.cover}
    return found


def attachments_of(data: Mapping[str, Any]) -> tuple[tuple[str, ...], MomentLink | None]:
    link = data.get("link")
    return tuple(data.get("images") or ()), MomentLink(link["title"], link["url"], link["cover"]) if link else None


# -- the image files (I/O) -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ImageFacts:
    path: Path
    size: int
    format: str
    width: int
    height: int

    @property
    def content_type(self) -> str:
        return FORMATS[self.format]


def media_file(media_dir: Path, name: str) -> Path | None:
    """The file `name` in the media folder; None for a name that leaves the folder."""
    root = media_dir.resolve()
    path = (root / name).resolve()
    return path if path.is_relative_to(root) else None


def image_facts(media_dir: Path, name: str, max_pixels: int | None = IMAGE_PIXELS) -> ImageFacts | str:
    """What the image `name` is, or why it cannot be one of a post's (`max_pixels`:
    Moments' own limit; None for other uploads)."""
    from PIL import Image, UnidentifiedImageError  # only the calendar's checks need it

    path = media_file(media_dir, name)
    if path is None:
        return f'"{name}" is outside the media folder'
    if not path.is_file():
        return f'"{name}": no such file in {media_dir}'
    try:
        with Image.open(path) as image:
            facts = ImageFacts(path, path.stat().st_size, str(image.format), image.width, image.height)
    except (UnidentifiedImageError, OSError):
        return f'"{name}" is not an image'
    if facts.format not in FORMATS:
        return f'"{name}" is a {facts.format} image; WeCom takes JPG or PNG'
    if facts.size > IMAGE_BYTES:
        return f'"{name}" is {facts.size / 1048576:.1f} MB; WeCom takes at most 10 MB'
    if max_pixels is not None and facts.width * facts.height > max_pixels:
        return (f'"{name}" is {facts.width}×{facts.height} = {facts.width * facts.height:,} pixels; '
                f"WeCom takes at most {IMAGE_PIXELS:,} (e.g. 1440×1080)")
    return facts


def media_problems(media_dir: Path, images: Sequence[str], link: MomentLink | None) -> list[str]:
    problems = [f"images: {found}" for name in images if isinstance(found := image_facts(media_dir, name), str)]
    if link is not None and isinstance(found := image_facts(media_dir, link.cover), str):
        problems.append(f"link.cover: {found}")
    return problems
