"""Settings for the content calendar ([calendar] in the configuration file; see
bot/settings/model.py). The entries themselves live in the database (`siyu calendar load`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from scheduler.calendar_run import CalendarOptions


class CalendarSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # A calendar file `siyu check` validates along with the configuration (relative to
    # the configuration file's folder). The running calendar is what was last loaded.
    file: str | None = None
    # After downtime, occurrences missed at most this many hours ago still fire...
    catch_up_hours: int = Field(default=24, ge=0, le=24 * 7)
    # ...and of each entry only the latest this many of them (0: none, missed is missed).
    catch_up_max: int = Field(default=1, ge=0, le=100)
    # WeCom mass sends a customer receives per calendar month, at most: a customer who
    # had this many is left out of the next one. WeCom's own cap (doc 92135, updated
    # 2025-11-17) is as many as the month has days, enterprise and staff mass sends
    # together, or 7 a week / 1 a day when an admin switches it; the "4 a month" of older
    # docs is gone. Ours stays far below it, about one a week: members who hear from a
    # brand most days leave. 0 leaves it to WeCom; `siyu doctor` shows both.
    wecom_mass_per_month: int = Field(default=4, ge=0, le=31)
    # The folder of the image files a Moments entry names (images = [...], link.cover),
    # relative to the configuration file's folder.
    media_dir: str = "media"


def calendar_options(
    calendar: CalendarSettings, persona: Mapping[str, Any], *, global_control: float = 0.0, outcome_scheme: str = "value",
) -> CalendarOptions:
    """What the every-minute calendar job needs: the persona's template variables (from
    `handler_config(settings).persona.template_variables()`) and the catch-up rules."""
    return CalendarOptions(dict(persona), timedelta(hours=calendar.catch_up_hours), calendar.catch_up_max,
                           wecom_mass_per_month=calendar.wecom_mass_per_month or None, media_dir=Path(calendar.media_dir),
                           global_control=global_control, outcome_scheme=outcome_scheme)
