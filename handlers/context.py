"""The typed context every handler receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from content_templates.renderer import Renderer
from handlers.config import HandlerConfig
from storage.models import Member


@dataclass(slots=True)
class HandlerContext:
    session: AsyncSession  # one transaction per update: all of a handler chain or nothing
    member: Member
    inbox_id: int
    now: datetime
    config: HandlerConfig
    renderer: Renderer
    # Tags this update gave the member, for the handlers after tagging.
    new_tags: list[str] = field(default_factory=list)
