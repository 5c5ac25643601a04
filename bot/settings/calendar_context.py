"""What the content calendar's parser checks entries against: the configured time zone,
layer schemes, tags and persona, and the template renderer."""

from __future__ import annotations

from pathlib import Path

from bot.settings.handlers import handler_config
from bot.settings.model import Settings, configured_tags
from bot.settings.templates import renderer_for
from scheduler.calendar import CalendarContext


def calendar_context(settings: Settings) -> CalendarContext:
    schemes = {s.name: [layer.name for layer in s.layers] for s in settings.layers.schemes}
    persona = handler_config(settings).persona.template_variables()
    return CalendarContext(settings.zone, schemes, renderer_for(settings), persona, configured_tags(settings),
                           Path(settings.calendar.media_dir))
