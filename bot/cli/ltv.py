"""`siyu ltv fit` (BG/NBD and Gamma-Gamma on the orders before a day, then every member
scored) and `siyu ltv show ID` (one member's P(alive) and expected value)."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime

from bot.cli.output import print_json, print_table
from bot.cli.sessions import open_sessions
from bot.settings.model import Settings
from scheduler.ltv_job import AtRisk, run_ltv_fit
from storage.ltv import latest_fit, score_of
from storage.members import find_member
from storage.models import utcnow


def at_risk_of(settings: Settings) -> AtRisk | None:
    scheme = settings.layers.scheme(settings.outcomes.scheme)
    return AtRisk(settings.outcomes.scheme, scheme.top(), settings.outcomes.at_risk_p_alive) if scheme else None


async def fit(settings: Settings, as_of: date | None, as_json: bool) -> int:
    as_of = as_of or datetime.now(settings.zone).date()
    try:
        async with open_sessions(settings) as sessions:
            found = await run_ltv_fit(sessions, as_of, utcnow(), settings.outcomes.ltv_horizon_days,
                                      at_risk_of(settings), settings.zone)
    except ValueError as error:
        print(f"siyu: {error}", file=sys.stderr)
        return 1
    if as_json:
        print_json({"as_of": found.as_of.isoformat(), "customers": found.customers,
                    "repeat_buyers": found.repeat_buyers, "params": found.params, "scored": found.scored,
                    "at_risk_tasks": found.at_risk_tasks, "seconds": round(found.seconds, 2)})
        return 0
    bg, gg = found.params["bgnbd"], found.params["gamma_gamma"]
    rows = [("BG/NBD r", f"{bg['r']:.4f}"), ("BG/NBD α (weeks)", f"{bg['alpha']:.4f}"),
            ("BG/NBD a", f"{bg['a']:.4f}"), ("BG/NBD b", f"{bg['b']:.4f}")]
    if gg:
        rows += [("Gamma-Gamma p", f"{gg['p']:.4f}"), ("Gamma-Gamma q", f"{gg['q']:.4f}"),
                 ("Gamma-Gamma γ (yuan)", f"{gg['v']:.4f}")]
    rows += [("customers", found.customers), ("repeat buyers", found.repeat_buyers), ("members scored", found.scored),
             ("at-risk tasks", found.at_risk_tasks)]
    print_table(f"LTV fitted on orders before {found.as_of} in {found.seconds:.1f} s (time unit: week)",
                ("", "value"), rows)
    return 0


async def show(settings: Settings, reference: str, as_json: bool) -> int:
    async with open_sessions(settings) as sessions, sessions() as session:
        member = await find_member(session, reference)
        if member is None or member.id is None:
            print(f"siyu: no member {reference!r} (try our id, a platform id or a unionid)", file=sys.stderr)
            return 1
        score = await score_of(session, member.id)
        model = await latest_fit(session)
    horizon = json.loads(model.params).get("horizon_days", 90) if model else settings.outcomes.ltv_horizon_days
    value = None if score is None else {
        "as_of": score.as_of.isoformat(), "p_alive": round(score.p_alive, 4),
        "orders_90d": round(score.orders_90d, 3), "clv_90d_yuan": round(score.clv_90d_cents / 100, 2),
        "horizon_days": horizon,
    }
    if as_json:
        print_json({"member_id": member.id, "name": member.name, "ltv": value})
        return 0
    if value is None:
        print(f"{member.name or member.id}: not scored (no order before the last fit, or `siyu ltv fit` never ran)")
        return 0
    print_table(f"{member.name or member.id} — lifetime value as of {value['as_of']}", ("", "value"), [
        ("P(alive)", f"{value['p_alive']:.0%}"), (f"expected orders, {horizon} days", value["orders_90d"]),
        (f"expected spend, {horizon} days (yuan)", f"{value['clv_90d_yuan']:.2f}"),
    ])
    return 0
