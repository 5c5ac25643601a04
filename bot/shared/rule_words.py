"""Tag rules and layer conditions read as words, for the console's rules page, rule forms
and member page and the WeCom sidebar's card: a Chinese phrase with its fields
(translated where it is shown) and a comparison that reads the same in every language."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.settings.rules import TagRuleSettings
from scheduler.layer_rules import INTERACTIONS, Condition, Layer

METRIC_LABELS = {
    "recency_days": "最近下单距今天数", "frequency": "下单次数", "monetary": "消费金额（元）",
    "r_score": "R 分（最近下单）", "f_score": "F 分（下单频次）", "m_score": "M 分（消费金额）",
    "days_since_joining": "入会天数", "referrals": "推荐来的会员数",
}
SYMBOLS = {">=": "≥", "<=": "≤", ">": ">", "<": "<", "==": "=", "!=": "≠"}


@dataclass(frozen=True, slots=True)
class Reading:
    """One condition, for people: a Chinese phrase translated in the template with its
    fields, then a comparison that reads the same in every language."""

    phrase: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    op: str = ""
    value: str = ""


# -- tag rules ---------------------------------------------------------------------------

def rule_in_chinese(rule: TagRuleSettings) -> str:
    """A rule's reading as one Chinese line (the sidebar speaks only Chinese)."""
    reading = rule_reading(rule)
    return " ".join(part for part in (reading.phrase.format(**reading.fields), reading.op, reading.value) if part)


def rule_reading(rule: TagRuleSettings) -> Reading:
    """What a rule matches, in words."""
    words = "、".join(rule.keywords)
    match rule.kind:
        case "keyword":
            return Reading("含全部关键词：{words}" if rule.match == "all" else "含任一关键词：{words}", {"words": words})
        case "regex":
            return Reading("匹配正则：{pattern}", {"pattern": rule.pattern or ""})
        case "behaviour":
            if rule.measure == "silent":
                return Reading("{days} 天没有任何互动", {"days": rule.days})
            return Reading("{days} 天内发来至少 {count} 条消息", {"days": rule.days, "count": rule.count})
    return _event_reading(rule.event or "", rule.subject)


def _event_reading(event: str, subject: str) -> Reading:
    named = {
        "added_via_channel": ("通过渠道「{subject}」添加店员", "通过任意渠道添加店员"),
        "joined_group": ("加入客户群「{subject}」", "加入任意客户群"),
        "left_group": ("退出客户群「{subject}」", "退出任意客户群"),
    }
    if event in named:
        some, any_ = named[event]
        return Reading(some, {"subject": subject}) if subject else Reading(any_)
    plain = {"deleted_staff": "删除店员", "placed_order": "下单", "opted_out": "退订营销消息"}
    return Reading(plain.get(event, event), value=f"（{subject}）" if subject else "")


# -- layer schemes -----------------------------------------------------------------------

def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def condition_reading(c: Condition) -> Reading:
    if c.metric == "paid_member":
        yes = (c.op == "==") == bool(c.value)
        return Reading("是付费会员" if yes else "不是付费会员")
    if found := INTERACTIONS.fullmatch(c.metric):
        label = Reading("近 {n} 天互动次数", {"n": int(found.group(1))})
    else:
        label = Reading(METRIC_LABELS.get(c.metric, c.metric))
    value = str(c.value).lower() if isinstance(c.value, bool) else _number(c.value)
    return Reading(label.phrase, label.fields, SYMBOLS.get(c.op, c.op), value)


def layer_readings(layer: Layer) -> list[Reading]:
    """Every condition of one layer entry (all must hold); a catch-all says so."""
    readings = [condition_reading(c) for c in layer.conditions]
    for phrase, tags in (("有全部标签：{tags}", layer.tags_all), ("有任一标签：{tags}", layer.tags_any),
                         ("没有标签：{tags}", layer.tags_none)):
        if tags:
            readings.append(Reading(phrase, {"tags": "、".join(tags)}))
    return readings or [Reading("其余所有会员")]


