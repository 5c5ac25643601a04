"""The weekly outcomes digest: last week's 成效 by source in a few lines, to the operators
named in `outcomes.digest_to` (staff userids on the staff platform), with the console
link; and the daily LTV fit the layer recompute then reads. Once per person per week."""

from __future__ import annotations

import logging
from datetime import datetime

from bot.settings.model import Settings
from bot.shared.outcomes_report import (
    OutcomesReport, interval_text, last_days, names_for, outcomes_report, percent,
)
from bot.shared.prompt_links import console_base_url
from scheduler.ltv_job import AtRisk, FitReport, run_ltv_fit
from storage.engine import SessionFactory
from storage.outbox import NewOutboxMessage, enqueue

log = logging.getLogger(__name__)
TOP = 8  # sources in the digest, most members reached first


def digest_text(report: OutcomesReport, link: str | None) -> str:
    lines = [f"成效周报 {report.start:%m-%d} 至 {report.end:%m-%d}（触达 vs 对照组，{report.windows['entry']} 天内下单）"]
    rows = sorted(report.rows, key=lambda r: -r.reached.members)[:TOP]
    for r in rows:
        if r.enough:
            lines.append(f"· {r.label}：触达 {r.reached.members} 人，转化 {percent(r.reached.rate)}，"
                         f"对照 {percent(r.held_out.rate)}，提升 {percent(r.rate_lift)} {interval_text(r.rate_interval, True)}")
        else:
            lines.append(f"· {r.label}：触达 {r.reached.members} 人，转化 {percent(r.reached.rate)}，对照组数据不足")
    if not rows:
        lines.append("· 上周没有触达记录。")
    if link:
        lines.append(f"详情：{link}")
    return "\n".join(lines)


async def send_outcomes_digest(sessions: SessionFactory, settings: Settings, platform: str | None,
                               now: datetime) -> int:
    recipients = settings.outcomes.digest_to
    if platform is None or not recipients:
        return 0
    start, end = last_days(now, settings.zone, 7)  # the brand's last seven whole days
    report = await outcomes_report(sessions, settings.outcomes, settings.zone, "source", start, end,
                                   names_for(settings, "source"))
    base = console_base_url(settings)
    text = digest_text(report, f"{base}/admin/outcomes?by=entry&from={start}&to={end}" if base else None)
    async with sessions() as session, session.begin():
        await enqueue(session, [NewOutboxMessage(f"outcomes-digest:{end:%Y%m%d}:{userid}", platform, userid,
                                                 "staff_prompt", text) for userid in recipients], now)
    return len(recipients)


async def daily_ltv_fit(sessions: SessionFactory, settings: Settings, now: datetime) -> FitReport | None:
    scheme = settings.layers.scheme(settings.outcomes.scheme)
    at_risk = AtRisk(settings.outcomes.scheme, scheme.top(), settings.outcomes.at_risk_p_alive) if scheme else None
    try:
        return await run_ltv_fit(sessions, now.astimezone(settings.zone).date(), now,
                                 settings.outcomes.ltv_horizon_days, at_risk, settings.zone)
    except ValueError as error:  # no repeat buyer yet: nothing to fit, nothing wrong
        log.info("ltv fit skipped: %s", error)
        return None
