"""Console pages: our own Jinja2 templates (autoescaped), with the viewer's language.

Operator-written content goes through the sandboxed renderer in `content_templates`;
these templates are the project's own.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from bot.console.i18n import translator
from bot.console.keys import CSRF, LANGUAGE, VIEWER

STATIC = Path(__file__).with_name("static")

_environment = Environment(
    loader=PackageLoader("bot.console", "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,  # a misspelt variable is an error, not an empty cell
    trim_blocks=True,
    lstrip_blocks=True,
)


def _day(value: date | datetime | None, pattern: str = "%Y-%m-%d") -> str:
    return value.strftime(pattern) if value is not None else "—"


_environment.filters["day"] = _day

# Pages hold members' data: never cached, never framed, and only our own scripts run
# (member-written text is escaped; the policy is the second lock on that door).
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
}

# (path, Chinese label, operators only)
NAV = (
    ("/admin/overview", "概览", True),
    ("/admin/members", "会员", False),
    ("/admin/calendar", "内容日历", True),
    ("/admin/group-welcomes", "入群欢迎语", True),
    ("/admin/rules", "标签与分层", True),
    ("/admin/settings", "设置与文案", True),
    ("/admin/staff", "店员", True),
    ("/admin/outcomes", "成效", True),
    ("/admin/tasks", "任务", False),
    ("/admin/handoffs", "转人工", False),
)


MANAGER_PAGES = ("/admin/overview", "/admin/staff")  # operators' pages a store manager sees for her store


def render(request: web.Request, template: str, *, http_status: int = 200, **context: Any) -> web.Response:
    language = request.get(LANGUAGE, "zh")
    viewer = request.get(VIEWER)
    nav = [(path, label) for path, label, operators in NAV if viewer is not None and not viewer.by_link and (
        viewer.is_operator or not operators or (viewer.store_id is not None and path in MANAGER_PAGES))]
    page = _environment.get_template(template).render(
        _=translator(language), language=language, viewer=viewer, csrf=request.get(CSRF, ""),
        path=request.path, path_qs=request.path_qs, nav=nav, **context,
    )
    return web.Response(text=page, status=http_status, content_type="text/html", charset="utf-8", headers=HEADERS)
