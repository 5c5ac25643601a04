"""Customer-group welcome templates (入群欢迎语素材) and group contact ways (加入群聊)
on WeCom's API (WECOM.md §9.3; docs 92366/96357 and 92229/99547).

A template is content a group owner picks in her client as the group's welcome; WeCom
keeps at most 100 per corp, and an app edits or deletes only those it created. A join
way is a QR code (scene 2) that brings whoever scans it into one of up to five groups,
with our `state` on her entry in `groupchat/get`, so joining says which channel she
came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.platforms.wecom.client import Json, WeComClient
from storage.group_welcomes import WelcomeContent

TEMPLATE = "/cgi-bin/externalcontact/group_welcome_template/"
JOIN_WAY = "/cgi-bin/externalcontact/groupchat/"
MAX_TEMPLATES = 100  # per corp
QR_CODE = 2  # join way scene: 1 mini-program plugin, 2 QR code


def template_body(welcome: WelcomeContent) -> Json:
    """A template's fields: text (%NICKNAME% becomes the newcomer's name) and at most one
    of an image (by URL) and a link; WeCom sends text and attachment as two messages."""
    body: Json = {"notify": int(welcome.notify)}
    if welcome.text:
        body["text"] = {"content": welcome.text}
    if welcome.image_url:
        body["image"] = {"pic_url": welcome.image_url}
    elif welcome.link_url:
        link: Json = {"title": welcome.link_title or "", "url": welcome.link_url}
        if welcome.link_picurl:
            link["picurl"] = welcome.link_picurl
        if welcome.link_desc:
            link["desc"] = welcome.link_desc
        body["link"] = link
    return body


async def add_template(client: WeComClient, welcome: WelcomeContent) -> str:
    return str((await client.call("POST", TEMPLATE + "add", body=template_body(welcome)))["template_id"])


async def edit_template(client: WeComClient, template_id: str, welcome: WelcomeContent) -> None:
    await client.call("POST", TEMPLATE + "edit", body={"template_id": template_id, **template_body(welcome)})


async def delete_template(client: WeComClient, template_id: str) -> None:
    await client.call("POST", TEMPLATE + "del", body={"template_id": template_id})


@dataclass(frozen=True, slots=True)
class JoinWay:
    chat_ids: Sequence[str]  # 1..5 groups; a full one sends newcomers to the next
    state: str  # our channel code, ≤30 characters
    remark: str = ""  # WeCom cuts it at 30 characters
    auto_create_room: bool = False  # open a new group when every listed one is full
    room_base_name: str = ""
    room_base_id: int = 1

    def body(self) -> Json:
        body: Json = {"scene": QR_CODE, "remark": self.remark[:30], "auto_create_room": int(self.auto_create_room),
                      "chat_id_list": list(self.chat_ids), "state": self.state}
        if self.auto_create_room:
            body.update(room_base_name=self.room_base_name, room_base_id=self.room_base_id)
        return body


async def add_join_way(client: WeComClient, way: JoinWay) -> str:
    return str((await client.call("POST", JOIN_WAY + "add_join_way", body=way.body()))["config_id"])


async def update_join_way(client: WeComClient, config_id: str, way: JoinWay) -> None:
    await client.call("POST", JOIN_WAY + "update_join_way", body={"config_id": config_id, **way.body()})


async def join_way_qr_code(client: WeComClient, config_id: str) -> str:
    data = await client.call("POST", JOIN_WAY + "get_join_way", body={"config_id": config_id})
    return str((data.get("join_way") or {}).get("qr_code") or "")


async def delete_join_way(client: WeComClient, config_id: str) -> None:
    await client.call("POST", JOIN_WAY + "del_join_way", body={"config_id": config_id})
