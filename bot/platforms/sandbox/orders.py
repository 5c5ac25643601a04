"""Orders in the sandbox: stand-in for a shop system telling us a member bought
something, so order event rules (and RFM data) can be tried without a till."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot.platforms.sandbox.requests import bad_request, json_body, json_error
from bot.shared.callbacks import store_update
from handlers.orders import ORDER_PLACED
from bot.shared.keys import SESSIONS
from handlers.updates import EventUpdate, from_payload
from storage.models import InboxEntry, utcnow
from storage.orders import MAX_AMOUNT_CENTS

PLATFORM = "sandbox"
ORDER_NO = re.compile(r"[A-Za-z0-9_-]{1,64}")


class BadOrder(ValueError):
    pass


def parse_order(body: Any) -> EventUpdate:
    """{"member": "王芳", "order_no": "A-1001", "amount": 38.5, "store": "jingan"}: the
    amount in yuan, the store code optional."""
    if not isinstance(body, dict):
        raise BadOrder('expected a JSON object like {"member": "王芳", "order_no": "A-1001", "amount": 38.5}')
    member, number, amount, store = body.get("member"), body.get("order_no"), body.get("amount"), body.get("store", "")
    if not isinstance(member, str) or not member.strip() or len(member) > 64:
        raise BadOrder('"member" is required: the member\'s name in the sandbox (at most 64 characters)')
    if not isinstance(number, str) or not ORDER_NO.fullmatch(number):
        raise BadOrder('"order_no" is required: 1-64 letters, digits, "-" or "_"')
    cents = amount_cents(amount)
    if not isinstance(store, str) or len(store) > 64:
        raise BadOrder('"store" must be a store code')
    return EventUpdate(
        key=f"{PLATFORM}:order:{number}", platform=PLATFORM, sender=member.strip(), event=ORDER_PLACED,
        occurred_at=utcnow(), detail={"order_no": number, "amount_cents": str(cents), "store": store},
    )


async def recorded_amount(request: web.Request, key: str) -> int | None:
    """The amount (cents) an order number was first posted with, or None if it is new."""
    async with request.config_dict[SESSIONS]() as session:
        payload = (await session.execute(select(InboxEntry.payload).where(InboxEntry.key == key))).scalar()
    if payload is None:
        return None
    update = from_payload(payload)
    return int(update.detail["amount_cents"]) if isinstance(update, EventUpdate) else None


def amount_cents(amount: Any) -> int:
    """Yuan (a JSON number or a string of one) into cents, refused unless finite, at most
    two decimals, not negative and at most MAX_AMOUNT_CENTS. The exponent is checked before
    any arithmetic: "1e999990" would otherwise build a million-digit integer."""
    if isinstance(amount, bool) or not isinstance(amount, (int, float, Decimal, str)) or len(str(amount)) > 40:
        raise BadOrder('"amount" must be a number of yuan, such as 38.5')
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        raise BadOrder('"amount" must be a number of yuan, such as 38.5') from None
    if not value.is_finite():
        raise BadOrder('"amount" must be a finite number of yuan, such as 38.5')
    if value and value.adjusted() > 12:  # far over the maximum; keeps the next steps cheap
        raise BadOrder(f'"amount" must be at most {MAX_AMOUNT_CENTS // 100} yuan')
    cents = value * 100
    if cents < 0 or cents != cents.to_integral_value():
        raise BadOrder('"amount" must be a non-negative number of yuan with at most two decimals')
    if cents > MAX_AMOUNT_CENTS:
        raise BadOrder(f'"amount" must be at most {MAX_AMOUNT_CENTS // 100} yuan')
    return int(cents)


async def post_order(request: web.Request) -> web.Response:
    body = await json_body(request)
    try:
        update = parse_order(body)
    except BadOrder as error:
        raise bad_request(str(error)) from None
    # An order number is kept once: the same order again is harmless, another amount
    # under it is a mistake said out loud, never dropped in silence.
    first = await recorded_amount(request, update.key)
    if first is not None and first != int(update.detail["amount_cents"]):
        was = f"{Decimal(first).scaleb(-2):.2f}"
        raise json_error(web.HTTPConflict, f'order "{update.detail["order_no"]}" was already recorded with {was} '
                         "yuan; an order number is kept once, so post a correction under a new order number")
    await store_update(request.app, update)
    return web.json_response({"key": update.key}, status=202)
