"""The links staff prompts carry: a console path (a task's page, the task list) made
into a signed absolute URL for the staff member the prompt goes to.

Given to the platform senders, which offer the link as a WeCom text card's button or a
line in the sandbox staff panel; without the console there is nothing to open, and the
builder gives None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from bot.settings.model import Settings
from bot.shared.task_links import signed_link
from handlers.outbound import TASK_LIST
from storage.models import utcnow

# (console path, staff userid) -> the URL to open, or None when the console is not served.
LinkBuilder = Callable[[str, str], str | None]
# The builder for pages that show prompts without a sign-in (the sandbox staff panel):
# plain console addresses, which open after a console login — never signed links.
LINKS: web.AppKey[LinkBuilder] = web.AppKey("prompt_links")


def console_base_url(settings: Settings) -> str:
    return settings.console.public_url or f"http://{settings.server.host}:{settings.server.port}"


def no_links(path: str, staff_userid: str) -> str | None:
    return None


def next_hour(moment: datetime) -> datetime:
    """The hour after `moment` began (itself when on the hour)."""
    start = moment.replace(minute=0, second=0, microsecond=0)
    return start if start == moment else start + timedelta(hours=1)


def prompt_link_builder(settings: Settings, secret: bytes, clock: Callable[[], datetime] = utcnow) -> LinkBuilder:
    """Signed task links for `settings`' console, good for `console.task_link_days`."""
    if not settings.console.users:
        return no_links
    base, days = console_base_url(settings), settings.console.task_link_days

    def link(path: str, staff_userid: str) -> str | None:
        # Signed from the next full hour: a retried send within the hour carries the same
        # URL, so WeCom's duplicate check sees the same message; the link holds a little
        # longer than `days`, never shorter.
        return signed_link(base, secret, path, staff_userid, next_hour(clock()), days)

    return link


def plain_link_builder(settings: Settings) -> LinkBuilder:
    """The console's address of a path, unsigned: for places anyone may read (the sandbox's
    panel and event stream), where a signed link would hand out that staff member's tasks."""
    if not settings.console.users:
        return no_links
    base = console_base_url(settings)

    def link(path: str, staff_userid: str) -> str | None:
        return f"{base}{path}"

    return link


def prompt_url(meta: Mapping[str, Any], staff_userid: str, links: LinkBuilder) -> str | None:
    """The URL a staff prompt row's meta points at (`{"link": "/admin/tasks/12"}`), if any."""
    path = meta.get("link")
    if not isinstance(path, str) or not path.startswith(TASK_LIST):
        return None  # only task pages open from a link (see bot.console.site)
    return links(path, staff_userid)
