"""The members page's log of recent bulk actions: who did what to how many, and for a
transfer of WeCom customers, what WeCom answered for each (the ones it refused named)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.segments import recent_bulk_actions
from storage.transfers import Outcome, transfer_outcomes

ACTION_LABELS = {"tag_add": "加标签", "tag_remove": "去掉标签", "assign": "分配负责店员", "transfer": "转给其他店员",
                 "export": "导出"}
# WeCom's errcode for one customer of transfer_customer, as operators read it.
REFUSALS = {40096: "企业微信不认识这位客户", 84061: "她不是原负责店员的企业微信客户"}
REFUSED_ELSE = "企业微信未受理（错误码 {code}）"
CALL_FAILED = "企业微信请求失败：{error}"


@dataclass(frozen=True, slots=True)
class RefusedLine:
    member_id: int
    name: str | None
    reason: str  # a phrase of the catalogue
    fields: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LogLine:
    at: datetime
    login: str
    action: str  # a phrase of the catalogue
    members: int
    staff: str | None
    wecom: Outcome | None
    refused: list[RefusedLine]


def refusal(errcode: int | None, error: str) -> tuple[str, dict[str, object]]:
    if errcode is None:
        return CALL_FAILED, {"error": error[:200]}
    if errcode in REFUSALS:
        return REFUSALS[errcode], {}
    return REFUSED_ELSE, {"code": errcode}


async def recent_log(session: AsyncSession, limit: int = 10) -> list[LogLine]:
    actions = await recent_bulk_actions(session, limit)
    outcomes = await transfer_outcomes(session, [a.id for a in actions if a.id is not None and a.action == "transfer"])
    lines = []
    for action in actions:
        detail = json.loads(action.detail or "{}")
        outcome = outcomes.get(action.id or 0)
        refused = [RefusedLine(r.member_id, r.name, *refusal(r.errcode, r.error)) for r in outcome.refused] if outcome else []
        lines.append(LogLine(action.at, action.login, ACTION_LABELS.get(action.action, action.action), action.members,
                             detail.get("staff"), outcome, refused))
    return lines
