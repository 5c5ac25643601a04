"""Settings for layers: the RFM window and scoring, and the layer schemes operators define.
Part of the configuration file (see bot/settings/model.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from scheduler.layer_rules import Layer, RfmSpec, Scheme, parse_condition


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RfmSettings(_Section):
    window_days: int = Field(default=365, ge=1, le=3650)
    method: Literal["quantiles", "thresholds"] = "quantiles"
    recency_days: list[int] = Field(default=[365, 180, 90, 30], min_length=4, max_length=4)
    frequency: list[int] = Field(default=[2, 4, 8, 16], min_length=4, max_length=4)
    monetary_yuan: list[float] = Field(default=[100, 500, 2000, 5000], min_length=4, max_length=4)

    @field_validator("recency_days", "frequency", "monetary_yuan")
    @classmethod
    def _positive(cls, values: list) -> list:
        if any(v <= 0 for v in values):
            raise ValueError("thresholds must be above 0")
        return values

    def spec(self) -> RfmSpec:
        return RfmSpec(self.window_days, self.method, tuple(self.recency_days), tuple(self.frequency),
                       tuple(self.monetary_yuan))


class LayerSettings(_Section):
    name: str = Field(min_length=1, max_length=32)
    label: str = ""
    when: dict[str, str | int | float | bool] = {}
    tags_all: list[str] = []
    tags_any: list[str] = []
    tags_none: list[str] = []

    @field_validator("when")
    @classmethod
    def _readable(cls, when: dict) -> dict:
        for metric, written in when.items():
            parse_condition(metric, written)  # raises with what is wrong
        return when

    def layer(self) -> Layer:
        conditions = tuple(parse_condition(m, w) for m, w in self.when.items())
        return Layer(self.name, self.label, conditions, tuple(self.tags_all), tuple(self.tags_any), tuple(self.tags_none))


class SchemeSettings(_Section):
    name: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    label: str = ""
    staff_tasks: bool = False
    layers: list[LayerSettings] = Field(min_length=1)

    def scheme(self) -> Scheme:
        return Scheme(self.name, tuple(layer.layer() for layer in self.layers), self.label, self.staff_tasks)

    def layer_labels(self) -> dict[str, str]:
        """Layer name → the operator's label for it: the first given (a name listed twice
        is one layer with two ways in). Layers without a label are left out."""
        labels: dict[str, str] = {}
        for layer in self.layers:
            if layer.label:
                labels.setdefault(layer.name, layer.label)
        return labels


def _layers(*rows: tuple[str, str, dict]) -> list[LayerSettings]:
    return [LayerSettings(name=name, label=label, **rest) for name, label, rest in rows]


DEFAULT_SCHEMES = [
    SchemeSettings(name="value", label="价值分层", staff_tasks=True, layers=_layers(
        ("super", "超级用户", {"when": {"r_score": ">= 4", "f_score": ">= 4", "m_score": ">= 4"}}),
        ("core", "核心用户", {"when": {"r_score": ">= 3", "f_score": ">= 3", "m_score": ">= 3"}}),
        ("important", "重要用户", {"when": {"m_score": ">= 4"}}),
        ("dormant", "沉睡用户", {"when": {"frequency": 0}}),
        ("dormant", "沉睡用户", {"when": {"r_score": "<= 1"}}),
        ("ordinary", "普通用户", {}),
    )),
    SchemeSettings(name="lifecycle", label="生命周期", layers=_layers(
        ("new", "新客", {"when": {"days_since_joining": "<= 30"}}),
        ("active", "活跃", {"when": {"interactions_30d": ">= 1"}}),
        ("active", "活跃", {"when": {"recency_days": "<= 60"}}),
        ("dormant", "沉睡", {"when": {"interactions_90d": 0, "frequency": 0}}),
        ("ordinary", "一般", {}),
    )),
    SchemeSettings(name="evolution", label="超级用户进化", layers=_layers(
        ("partner", "合伙人", {"tags_any": ["合伙人"]}),
        ("referrer", "推荐者", {"when": {"referrals": ">= 1"}}),
        ("vip", "VIP", {"when": {"paid_member": True, "f_score": ">= 4"}}),
        ("paying", "付费会员", {"when": {"paid_member": True}}),
        ("target", "目标用户", {}),
    )),
]


class LayersSettings(_Section):
    # Daily: recompute every scheme (incrementally), then snapshot engagement per layer.
    recompute_cron: str = "30 3 * * *"
    engagement_cron: str = "10 0 * * *"
    rfm: RfmSettings = RfmSettings()
    schemes: list[SchemeSettings] = DEFAULT_SCHEMES
    # Tags conditions may name besides those tag rules and channels give (set by staff
    # or in WeCom); a condition naming any other tag is an error.
    known_tags: list[str] = ["合伙人"]

    @model_validator(mode="after")
    def _unique_schemes(self) -> LayersSettings:
        names = [s.name for s in self.schemes]
        if len(names) != len(set(names)):
            raise ValueError("scheme names must be unique")
        return self

    def scheme(self, name: str) -> Scheme | None:
        return next((s.scheme() for s in self.schemes if s.name == name), None)
