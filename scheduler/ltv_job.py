"""Fit BG/NBD and Gamma-Gamma on the brand's orders as of a date and score every member
who has ordered: P(alive), expected orders and spend in the horizon (`ltv_scores`), which
the layer recompute reads as the metrics `p_alive`, `orders_90d` and `clv_90d`.

Times are in weeks, as in the papers, counted in whole days (so members alike collapse
into one weighted row); a member's orders are counted as purchases (the first is her
trial, the rest repeats), and her spend per order is the mean of all her orders. Past
`FIT_SAMPLE` customers the parameters are fitted on a fixed random sample of that many
(four population parameters are pinned down long before) and every member is scored.
The numeric work runs in a thread: the event loop keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import date, datetime, time as clock_time, timezone, tzinfo
from typing import TYPE_CHECKING, Any

import numpy as np

from storage.engine import SessionFactory
from storage.ltv import OrderSummary, order_summary, save_fit, top_layer_under, under, write_scores
from storage.tasks import NewTask, create_tasks

if TYPE_CHECKING:
    from scheduler import ltv

FIT_SAMPLE = 100_000


@dataclass
class FitReport:
    as_of: date
    customers: int
    repeat_buyers: int
    params: dict[str, Any] = field(default_factory=dict)
    scored: int = 0
    at_risk_tasks: int = 0
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class AtRisk:
    """A member of `layer` (the top of `scheme`) whose P(alive) falls under `threshold`
    gives her owner one task — on the fit where she crosses it, not on every fit after."""

    scheme: str
    layer: str
    threshold: float


def fit_and_score(summary: OrderSummary, horizon_days: int) -> tuple[dict[str, Any], ltv.Scores]:
    """The pure part: arrays in, parameters and scores out."""
    from scheduler import ltv  # SciPy's optimisers load when a fit runs, not when the server starts

    x = np.asarray(summary.orders, dtype=np.float64) - 1
    t_x = np.asarray(summary.first_to_last_days, dtype=np.float64) / 7
    T = np.asarray(summary.first_to_date_days, dtype=np.float64) / 7
    mean_yuan = np.asarray(summary.cents, dtype=np.float64) / 100 / np.maximum(x + 1, 1)
    fit = np.arange(len(x))
    if len(x) > FIT_SAMPLE:
        fit = np.random.default_rng(17).choice(len(x), FIT_SAMPLE, replace=False)
    bg = ltv.fit_bgnbd(x[fit], t_x[fit], T[fit])
    try:
        gg: ltv.GammaGamma | None = ltv.fit_gamma_gamma(x[fit], mean_yuan[fit])
    except ValueError:
        gg = None
    scores = ltv.score(bg, gg, horizon_days / 7, x, t_x, T, mean_yuan)
    params: dict[str, Any] = {
        "unit": "week", "horizon_days": horizon_days, "customers": len(x), "fitted_on": bg.customers,
        "bgnbd": {"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b, "log_likelihood": bg.log_likelihood},
        "gamma_gamma": None if gg is None else {"p": gg.p, "q": gg.q, "v": gg.v, "customers": gg.customers,
                                                "log_likelihood": gg.log_likelihood},
    }
    return params, scores


async def run_ltv_fit(
    sessions: SessionFactory, as_of: date, now: datetime, horizon_days: int = 90, at_risk: AtRisk | None = None,
    zone: tzinfo = timezone.utc,
) -> FitReport:
    """Fit on the orders placed before `as_of` began in the brand's `zone` (its local
    midnight, not UTC's: in Shanghai an order at 00:30 belongs to that day)."""
    started = time.perf_counter()
    end = datetime.combine(as_of, clock_time(0), zone).astimezone(timezone.utc)
    async with sessions() as session:
        summary = await order_summary(session, end)
    report = FitReport(as_of, len(summary.member_ids), sum(1 for n in summary.orders if n > 1))
    if report.repeat_buyers == 0:
        raise ValueError("no member has ordered twice: there is nothing to fit yet")
    params, scores = await asyncio.to_thread(fit_and_score, summary, horizon_days)
    report.params = params
    async with sessions() as session, session.begin():
        before = await under(session, at_risk.threshold) if at_risk else set()
        await save_fit(session, as_of, report.customers, params, now)
        await write_scores(session, as_of, summary.member_ids, scores.p_alive.tolist(), scores.orders.tolist(),
                           (scores.value * 100).tolist(), now)
        if at_risk is not None:
            fallen = [m for m in await top_layer_under(session, at_risk.scheme, at_risk.layer, at_risk.threshold)
                      if m[0] not in before]
            await create_tasks(session, [
                NewTask(dedupe_key=f"ltv-at-risk:{member_id}:{as_of:%Y%m%d}", kind="ltv_at_risk",
                        title=f"可能流失：{name or member_id}（仍是老客的概率 {p:.0%}）"[:256], due_date=as_of,
                        staff_id=owner, member_id=member_id,
                        body=f"{name or member_id} 是最高层的会员，但按她的购买节奏，她仍在买的概率已降到 {p:.0%}。"
                             "找个由头真诚地问候她，不带推销。")
                for member_id, name, owner, p in fallen], now)
            report.at_risk_tasks = len(fallen)
    report.scored = len(summary.member_ids)
    report.seconds = time.perf_counter() - started
    return report
