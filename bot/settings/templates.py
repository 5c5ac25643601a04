"""The template renderer for a configuration: the operator's template folder, if any, in
front of the shipped templates, in Jinja2's sandbox."""

from __future__ import annotations

from pathlib import Path

from bot.settings.model import Settings
from content_templates.renderer import Renderer


def renderer_for(settings: Settings) -> Renderer:
    return Renderer([Path(settings.templates.dir)] if settings.templates.dir else [], settings.templates.texts)
