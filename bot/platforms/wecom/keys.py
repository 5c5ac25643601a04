"""What the application holds for WeCom and the official account (typed app keys)."""

from __future__ import annotations

from aiohttp import web

from bot.platforms.wecom.client import OfficialAccountClient, WeComClient

WECOM_CLIENT = web.AppKey("wecom_client", WeComClient)
OA_CLIENT = web.AppKey("oa_client", OfficialAccountClient)
