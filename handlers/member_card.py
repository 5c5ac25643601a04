"""The member card staff see before a touch: who she is, her layers and tags, what was
said last, and her next care day. Shared by the `查` command and the console's task page."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.care_dates import next_anniversary, next_birthday, next_care_moment
from storage.interactions import last_interaction
from storage.layers import layers_of
from storage.members import masked_phone
from storage.models import Member
from storage.tags import tags_of

CARE_NAMES = {"birthday": "生日", "anniversary": "入会周年"}
SPEAKERS = {"message_in": "会员说", "message_out": "我们说", "staff_out": "同事回复"}


async def member_card(session: AsyncSession, member: Member, today: date, zone: ZoneInfo | None,
                      labels: Mapping[str, tuple[str, Mapping[str, str]]] | None = None) -> dict[str, Any]:
    """The card; layers by the labels operators gave them (scheme label → layer label)."""
    assert member.id is not None
    labels = labels or {}
    layers = {}
    for scheme, layer in (await layers_of(session, member.id)).items():
        scheme_label, names = labels.get(scheme, (scheme, {}))
        layers[scheme_label] = names.get(layer, layer)
    last = await last_interaction(session, member.id)
    care = next_care_moment(
        member.birth_month, member.birth_day, member.birthday_calendar, member.birthday_leap_month,
        member.member_since, today,
    )
    return {
        "id": member.id,
        "name": member.name,
        "phone": masked_phone(member.phone),
        "opted_out": member.opted_out_at is not None,
        "layers": layers,
        "tags": [t.name for t in await tags_of(session, member.id)][:8],
        "last_interaction": _describe(last.at, last.kind, last.text, zone) if last else None,
        # The same, in parts, for a page that translates who spoke.
        "last": {"at": (last.at.astimezone(zone) if zone else last.at).strftime("%m-%d %H:%M"),
                 "who": SPEAKERS.get(last.kind, "事件"), "text": (last.text or "")[:30]} if last else None,
        "next_care": f"{CARE_NAMES[care[0]]} {care[1].strftime('%Y-%m-%d')}" if care else None,
    }


def _describe(at: datetime, kind: str, text: str | None, zone: ZoneInfo | None) -> str:
    local = at.astimezone(zone) if zone else at
    return f"{local.strftime('%m-%d %H:%M')} {SPEAKERS.get(kind, '事件')}：{(text or '')[:30]}"


def care_days(member: Member, today: date) -> list[tuple[str, date, int]]:
    """Her next birthday and membership anniversary, soonest first, with days to go."""
    moments = [
        ("生日", next_birthday(member.birth_month, member.birth_day, member.birthday_calendar,
                              member.birthday_leap_month, today)),
        ("入会周年", next_anniversary(member.member_since, today)),
    ]
    return sorted(((name, when, (when - today).days) for name, when in moments if when is not None),
                  key=lambda m: m[1])


WORDS_MARKER = "参考话术"


def suggested_words(body: str) -> str | None:
    """The words a task suggests saying to her: what follows its 参考话术 line (the care
    templates write one), or None when the task suggests none."""
    lines = body.splitlines()
    for n, line in enumerate(lines):
        if WORDS_MARKER in line:
            words = "\n".join(lines[n + 1:]).strip()
            return words or None
    return None
