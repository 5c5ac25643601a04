"""Read-only commands: `siyu member show` and `siyu outbox list`."""

from __future__ import annotations

import sys
from typing import Any

from bot.cli.output import print_json, print_table
from bot.cli.sessions import open_sessions
from bot.shared.member_value import member_value
from bot.settings.model import Settings
from handlers.care_dates import next_care_moment
from storage.care import plan_of
from storage.interactions import count_interactions
from storage.members import find_member, identities_of, masked_phone, store_and_owner
from storage.models import utcnow
from storage.outbox import list_entries
from storage.tags import interests_of, tags_of


async def member_show(settings: Settings, reference: str, as_json: bool) -> int:
    async with open_sessions(settings) as sessions, sessions() as session:
        member = await find_member(session, reference)
        if member is None or member.id is None:
            print(f"siyu: no member {reference!r} (try our id, a platform id or a unionid)", file=sys.stderr)
            return 1
        store, owner = await store_and_owner(session, member)
        identities = await identities_of(session, member.id)
        tags = await tags_of(session, member.id)
        interests = await interests_of(session, member.id)
        interactions = await count_interactions(session, member.id)
        plan = await plan_of(session, member.id)
        found = await member_value(session, member.id, settings.outcomes.ltv_horizon_days)
    birthday = None
    if member.birth_month and member.birth_day:
        birthday = {
            "calendar": member.birthday_calendar,
            "year": member.birth_year,
            "month": member.birth_month,
            "day": member.birth_day,
            "leap_month": member.birthday_leap_month,
        }
    card: dict[str, Any] = {
        "id": member.id,
        "name": member.name,
        "phone": masked_phone(member.phone),
        "unionid": member.unionid,
        "birthday": birthday,
        "member_since": member.member_since,
        "paid_member": member.paid_member,
        "store": store.name if store else None,
        "owner_staff": owner.userid if owner else None,
        "opted_out_at": member.opted_out_at,
        "identities": [{"platform": i.platform, "id": i.external_id} for i in identities],
        "tags": [
            {
                "name": t.name,
                "group": t.group,
                "source": t.source,
                "source_ref": t.source_ref,
                "first_seen": t.first_seen,
                "last_seen": t.last_seen,
                "hit_count": t.hit_count,
            }
            for t in tags
        ],
        "interests": interests,  # topic → the summed weights of the rule hits behind it
        "interactions": interactions,
        # The nearest of her birthday and membership anniversary (care), and her year's
        # six planned touches if she is in the top layer (六次互动).
        "next_care": _next_care(member, settings),
        "six_moments": [
            {"slot": t.slot, "year": t.year, "kind": t.kind, "due_date": t.due_date, "label": t.label,
             "task_id": t.task_id, "task_status": status}
            for t, status in plan
        ],
        # Lifetime value from the latest `siyu ltv fit` (null, with why, when there is none).
        "ltv": found.value.to_json() if found.value else None,
        "ltv_missing": None if found.value else found.missing,
    }
    if as_json:
        print_json(card)
        return 0
    profile = [(k, v) for k, v in card.items()
               if k not in ("tags", "identities", "interests", "six_moments", "ltv", "ltv_missing")]
    if (care := card["next_care"]) is not None:
        profile = [(k, f"{care['occasion']} {care['date']} (in {care['in_days']} days)" if k == "next_care" else v)
                   for k, v in profile]
    profile.append(("interests", ", ".join(f"{topic} {score}" for topic, score in interests.items())))
    profile.append(("identities", ", ".join(f"{i['platform']}:{i['id']}" for i in card["identities"])))
    print_table(f"member {member.id}", ("field", "value"), profile)
    print_table(
        "tags (why she has each)",
        ("tag", "group", "source", "first seen", "last seen", "hits"),
        [(t.name, t.group, f"{t.source}:{t.source_ref}", t.first_seen, t.last_seen, t.hit_count) for t in tags],
    )
    if (value := found.value) is not None:
        print_table(f"lifetime value (终身价值) as of {value.as_of}", ("", "value"), [
            ("P(alive) 仍会回购的概率", f"{value.p_alive:.0%}"),
            (f"expected orders, {value.horizon_days} days", f"{value.orders:.1f}"),
            (f"expected spend, {value.horizon_days} days (yuan)", f"{value.spend_yuan:.2f}"),
        ])
        print(value.explanation())
    else:
        print(f"lifetime value: none yet — {found.missing}")
    if card["six_moments"]:
        print_table(
            "six moments (六次互动)",
            ("slot", "due", "kind", "label", "task", "status"),
            [(t["slot"], t["due_date"], t["kind"], t["label"], t["task_id"], t["task_status"]) for t in card["six_moments"]],
        )
    return 0


def _next_care(member: Any, settings: Settings) -> dict[str, Any] | None:
    today = utcnow().astimezone(settings.zone).date()
    moment = next_care_moment(member.birth_month, member.birth_day, member.birthday_calendar,
                              member.birthday_leap_month, member.member_since, today)
    if moment is None:
        return None
    occasion, when = moment
    return {"occasion": occasion, "date": when, "in_days": (when - today).days}


async def outbox_list(settings: Settings, status: str | None, limit: int, as_json: bool) -> int:
    async with open_sessions(settings) as sessions, sessions() as session:
        rows = await list_entries(session, status, limit)
    records = [
        {
            "id": r.id,
            "dedupe_key": r.dedupe_key,
            "platform": r.platform,
            "recipient": r.recipient,
            "member_id": r.member_id,
            "kind": r.kind,
            "status": r.status,
            "attempts": r.attempts,
            "not_before": r.not_before,
            "sent_at": r.sent_at,
            "last_error": r.last_error,
            "body": r.body,
        }
        for r in rows
    ]
    if as_json:
        print_json(records)
        return 0
    print_table(
        "outbox",
        ("id", "platform", "to", "kind", "status", "tries", "sent", "error", "body"),
        [
            (r["id"], r["platform"], r["recipient"], r["kind"], r["status"], r["attempts"],
             r["sent_at"], r["last_error"], (r["body"] or "")[:40])
            for r in records
        ],
    )
    return 0
