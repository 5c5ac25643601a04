"""Settings for care (关怀) and the six moments a year (六次互动): when and how the daily
care scan acts, per layer, and what it says. Part of the configuration file (see
bot/settings/model.py: `care` and `six_moments`); bot/settings/care_plan.py turns them
into the plain values the scheduler works with."""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from scheduler.care import CareRule, CareTemplates
from scheduler.festivals import Festival
from scheduler.six_moments import FILLER_KINDS

OCCASIONS = ("birthday", "anniversary", "winback", "festival")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FestivalSettings(_Section):
    name: str = Field(min_length=1, max_length=16)
    calendar: Literal["solar", "lunar"] = "solar"
    date: str  # "MM-DD" in its calendar

    @model_validator(mode="after")
    def _real_day(self) -> FestivalSettings:
        if not re.fullmatch(r"\d{2}-\d{2}", self.date):
            raise ValueError(f"date {self.date!r} is not MM-DD")
        month, day = map(int, self.date.split("-"))
        if self.calendar == "lunar":
            if not (1 <= month <= 12 and 1 <= day <= 30):
                raise ValueError(f"date {self.date!r} is not a lunar month (01-12) and day (01-30)")
        else:
            try:
                date(2000, month, day)  # a leap year: 02-29 is allowed (28 February in other years)
            except ValueError:
                raise ValueError(f"date {self.date!r} is not a day of the year") from None
        return self

    def festival(self) -> Festival:
        month, day = map(int, self.date.split("-"))
        return Festival(self.name, self.calendar, month, day)


DEFAULT_FESTIVALS = [
    FestivalSettings(name=name, calendar=calendar, date=when)  # type: ignore[arg-type]
    for name, calendar, when in (
        ("春节", "lunar", "01-01"), ("元宵", "lunar", "01-15"), ("妇女节", "solar", "03-08"),
        ("端午", "lunar", "05-05"), ("七夕", "lunar", "07-07"), ("中秋", "lunar", "08-15"),
        ("重阳", "lunar", "09-09"),
    )
]


class CareLayerSettings(_Section):
    """What a layer gets on its occasions."""

    message: bool = False  # a persona message on the day
    task: bool = False  # a task for her owner, N days ahead, due on the day
    gift: bool = False  # the task is to send flowers or a cake, no condition attached
    occasions: list[str] = ["birthday"]
    # The share of this layer held out of each occasion (never sent, recorded as held
    # out) so the outcomes page can say what the care brought. Drawn per member and per
    # occasion and year: nobody is left out of every birthday. 0 holds out nobody.
    holdout: float = Field(default=0.0, ge=0.0, le=0.5)

    @field_validator("occasions")
    @classmethod
    def _known(cls, occasions: list[str]) -> list[str]:
        for occasion in occasions:
            if occasion not in OCCASIONS and not occasion.startswith("festival-"):
                raise ValueError(f"unknown occasion {occasion!r} (use {', '.join(OCCASIONS)} or festival-<name>)")
        return occasions

    def rule(self) -> CareRule:
        return CareRule(self.message, self.task, self.gift, frozenset(self.occasions), self.holdout)


class CareTemplateSettings(_Section):
    birthday: str = "care/birthday.txt.j2"
    anniversary: str = "care/anniversary.txt.j2"
    festival: str = "care/festival.txt.j2"
    winback: str = "care/winback.txt.j2"
    task: str = "care/staff_gift.txt.j2"

    def templates(self) -> CareTemplates:
        return CareTemplates(self.birthday, self.anniversary, self.festival, self.winback, self.task)


class CareSettings(_Section):
    # The layer scheme whose layers decide the care (a scheme of [layers]).
    scheme: str = "value"
    # Local time ("HH:MM") at which the day's care messages are sent.
    send_time: str = "10:00"
    # Tasks appear this many days before the occasion, due on the day (0-30).
    task_days_ahead: int = Field(default=3, ge=0, le=30)
    # When the daily scan runs (crontab line in the top-level timezone): after the layer
    # recompute (03:30), before send_time.
    scan_cron: str = "5 6 * * *"
    festivals: list[FestivalSettings] = DEFAULT_FESTIVALS
    # Win-back: a member with no interaction and no order for this many days.
    winback_days: int = Field(default=90, ge=7, le=3650)
    # The scheme's top layer: a person's touch, no message.
    top_layer: CareLayerSettings = CareLayerSettings(task=True, gift=True, occasions=["birthday", "anniversary"])
    # Every other layer, and members without a layer in the scheme.
    other_layers: CareLayerSettings = CareLayerSettings(message=True, occasions=["birthday", "winback"])
    # Per layer by name, over the two above.
    layers: dict[str, CareLayerSettings] = {}
    templates: CareTemplateSettings = CareTemplateSettings()

    @field_validator("send_time")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"{value!r} is not a time like 10:00")
        return value

    @model_validator(mode="after")
    def _festivals_known(self) -> CareSettings:
        names = [f.name for f in self.festivals]
        if len(names) != len(set(names)):
            raise ValueError("festival names must be unique")
        for where, layer in [("top_layer", self.top_layer), ("other_layers", self.other_layers),
                             *((f"layers.{n}", rule) for n, rule in self.layers.items())]:
            for occasion in layer.occasions:
                if occasion.startswith("festival-") and occasion.removeprefix("festival-") not in names:
                    raise ValueError(f"{where}: no festival {occasion.removeprefix('festival-')!r} in care.festivals")
        return self


class SixMomentsSettings(_Section):
    # Plan six touches a year for each member of the care scheme's top layer.
    enabled: bool = True
    # A touch becomes a task for her owner this many days before it is due (0-60).
    days_ahead: int = Field(default=7, ge=0, le=60)
    # What fills the year besides her birthday and membership anniversary, in order.
    kinds: list[Literal["festival", "preview", "check_in", "invitation"]] = list(FILLER_KINDS)  # type: ignore[assignment]
    template: str = "care/six_moments.txt.j2"
