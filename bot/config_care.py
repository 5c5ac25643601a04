"""Settings for care (关怀) and the six moments a year (六次互动): when and how the daily
care scan acts, per layer, and what it says. Part of the configuration file (see
bot/config.py: `care` and `six_moments`); `care_plan` turns them into the plain values
the scheduler works with."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date, time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from handlers.config import Persona
from scheduler.care import CarePlan, CareRule, CareTemplates
from scheduler.cron import cron_problem
from scheduler.festivals import Festival
from scheduler.six_moments import FILLER_KINDS, SixMomentsPlan

if TYPE_CHECKING:
    from bot.config import Settings

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

    @field_validator("occasions")
    @classmethod
    def _known(cls, occasions: list[str]) -> list[str]:
        for occasion in occasions:
            if occasion not in OCCASIONS and not occasion.startswith("festival-"):
                raise ValueError(f"unknown occasion {occasion!r} (use {', '.join(OCCASIONS)} or festival-<name>)")
        return occasions

    def rule(self) -> CareRule:
        return CareRule(self.message, self.task, self.gift, frozenset(self.occasions))


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


def care_plan(settings: Settings) -> CarePlan:
    """The care settings as the scheduler's plain values; ValueError names a bad scheme."""
    care: CareSettings = settings.care  # type: ignore[attr-defined]
    six: SixMomentsSettings = settings.six_moments  # type: ignore[attr-defined]
    scheme = settings.layers.scheme(care.scheme)
    if scheme is None:
        known = ", ".join(s.name for s in settings.layers.schemes)
        raise ValueError(f"care.scheme: no layer scheme {care.scheme!r} (configured: {known})")
    unknown = sorted(set(care.layers) - set(scheme.order()))
    if unknown:
        raise ValueError(f"care.layers: no layer {', '.join(map(repr, unknown))} in scheme {care.scheme!r}")
    p = settings.persona
    persona = Persona(p.name, p.title, p.signature, p.default_line, dict(p.tips)).template_variables()
    festivals = tuple(f.festival() for f in care.festivals)
    plan = CarePlan(
        scheme=care.scheme, top_layer=scheme.top(), send_time=time.fromisoformat(care.send_time),
        task_days_ahead=care.task_days_ahead, winback_days=care.winback_days, festivals=festivals,
        rules={name: layer.rule() for name, layer in care.layers.items()}, top_rule=care.top_layer.rule(),
        other_rule=care.other_layers.rule(), templates=care.templates.templates(), persona=persona,
    )
    if not six.enabled:
        return plan
    top_rule = plan.rule_for(scheme.top())
    in_care = frozenset(k for k in ("birthday", "anniversary") if top_rule.task and top_rule.covers(k))
    moments = SixMomentsPlan(care.scheme, scheme.top(), six.days_ahead, tuple(six.kinds), six.template, festivals,
                             in_care)
    return replace(plan, six_moments=moments)


def care_problems(settings: Settings, render_problems: Callable[[str, Mapping[str, Any]], list[str]]) -> list[str]:
    """What `siyu check` finds wrong with care: the scheme and its layers, the cron line,
    and every care template rendered with sample values (each occasion, gift or not)."""
    try:
        plan = care_plan(settings)
    except ValueError as error:
        return [str(error)]
    care: CareSettings = settings.care  # type: ignore[attr-defined]
    problems = [f"care.scan_cron: {p}" for p in [cron_problem(care.scan_cron, settings.zone)] if p]
    sample = {"persona": dict(plan.persona), "member": {"name": "王芳"}, "store": {"name": "示例门店"},
              "date": date(2026, 9, 25), "years": 3, "calendar": "lunar"}
    for occasion in ("birthday", "anniversary", "festival", "winback"):
        variables = {**sample, "occasion": occasion, "festival": "中秋" if occasion == "festival" else None}
        template = getattr(plan.templates, occasion)
        problems += [f"care.templates.{occasion}: {p}" for p in render_problems(template, variables)]
        for gift in (True, False):
            task = {**variables, "gift": gift, "words": "……"}
            problems += [f"care.templates.task: {p}" for p in render_problems(plan.templates.task, task)]
    if plan.six_moments is not None:
        for kind in ("birthday", "anniversary", *FILLER_KINDS):
            variables = {**sample, "kind": kind, "label": kind}
            problems += [f"six_moments.template: {p}" for p in render_problems(plan.six_moments.template, variables)]
    return sorted(set(problems), key=problems.index)
