"""Delivery of a bulk transfer's rows (route "transfer_customer", storage/transfers.py):
one 在职继承 call per row, and WeCom's answer for each customer noted on the row, where
the console's action log reads it."""

from __future__ import annotations

import logging

from bot.platforms.wecom.client import WeComClient
from scheduler.delivery import OutboundMessage, SendResult
from storage.engine import SessionFactory
from storage.transfers import record_results

log = logging.getLogger(__name__)


async def transfer_customers(client: WeComClient, sessions: SessionFactory, message: OutboundMessage) -> SendResult:
    meta = message.meta
    customers = meta.get("customers")
    if not isinstance(customers, list) or not customers or not all(isinstance(c, str) and c for c in customers):
        return SendResult.failed("transfer_customer row without its customers: nothing sent")
    try:
        results = await client.transfer_customer(
            str(meta.get("handover") or message.recipient), str(meta.get("takeover") or ""), customers,
            str(meta.get("message") or ""),
        )
    except ValueError as error:
        return SendResult.failed(str(error))
    # A customer WeCom did not mention was not transferred: say so rather than count her in.
    answered = {c: results.get(c, -1) for c in customers}
    async with sessions() as session, session.begin():
        await record_results(session, message.id, answered)
    refused = sum(1 for code in answered.values() if code != 0)
    if refused:
        log.info("transfer %s: WeCom refused %d of %d customers", message.dedupe_key, refused, len(customers))
    return SendResult.sent(f"{len(customers) - refused} started, {refused} refused")
