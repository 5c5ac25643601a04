"""The typed contexts handlers receive."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from content_templates.renderer import Renderer
from handlers.config import HandlerConfig
from storage.models import Member


@dataclass(slots=True)
class PlatformContext:
    """For updates about staff or the platform itself (groups, tags, pull triggers)."""

    session: AsyncSession  # one transaction per update: all of a chain or nothing
    inbox_id: int
    now: datetime
    config: HandlerConfig
    renderer: Renderer


@dataclass(slots=True)
class HandlerContext(PlatformContext):
    """For updates from or about a member, resolved before the chain runs."""

    member: Member = field(kw_only=True)
    # Tags this update gave the member, for the handlers after tagging.
    new_tags: list[str] = field(default_factory=list, kw_only=True)
    # Whether a keyword or regex tag rule understood the message (new tag or not): the
    # persona then has something to say to it.
    understood: bool = field(default=False, kw_only=True)
    # Set by a handler that has fully answered the update: the rest of the chain is skipped.
    answered: bool = field(default=False, kw_only=True)
