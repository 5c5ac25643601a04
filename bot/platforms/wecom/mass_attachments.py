"""A calendar mass send's attachments (scheduler/mass_attachments.py) as add_msg_template
takes them (WECOM.md §4.3): a link as it is, images and a mini-program's cover uploaded
first as temporary media (media/upload), their media_ids in the body."""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.platforms.wecom.client import Json, WeComClient


def _read(path: str) -> tuple[str, bytes, str]:
    file = Path(path)
    return file.name, file.read_bytes(), mimetypes.guess_type(file.name)[0] or "image/jpeg"


async def _upload(client: WeComClient, path: str) -> str:
    name, content, kind = await asyncio.to_thread(_read, path)
    return await client.upload_media(name, content, kind)


async def wire_attachments(client: WeComClient, spec: Mapping[str, Any]) -> list[Json]:
    """The attachments of a mass_send row's meta, in add_msg_template's shapes."""
    found: list[Json] = []
    if link := spec.get("link"):
        found.append({"msgtype": "link", "link": {k: link[k] for k in ("title", "url", "desc", "picurl") if link.get(k)}})
    for path in spec.get("images") or ():
        found.append({"msgtype": "image", "image": {"media_id": await _upload(client, path)}})
    if mini := spec.get("miniprogram"):
        found.append({"msgtype": "miniprogram", "miniprogram": {
            "title": mini["title"], "pic_media_id": await _upload(client, mini["cover"]),
            "appid": mini["appid"], "page": mini["page"],
        }})
    return found
