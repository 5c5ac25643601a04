"""The delivery loop: a long-lived task that sends due outbox rows through the platforms.

It claims rows, asks the policy gate at send time (scheduler/gate.py: an opt-out that
arrives after a message was queued still stops it; quiet hours defer; weekly caps hold),
sends through the platform's `Sender`, and records the outcome on the row: sent, failed
with the reason, or pending again after a backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from scheduler.gate import DeliveryPolicy, decide
from scheduler.policy import retry_delay
from storage import outbox
from storage.engine import SessionFactory
from storage.interactions import record_interaction
from storage.metrics import count_hold, record_send
from storage.models import OutboxEntry, utcnow
from storage.outcomes import record_touch, source_of
from storage.tracing import request_id_in, traced

log = logging.getLogger(__name__)
# Routes that put words in front of a member, and so count as interactions.
MESSAGE_ROUTES = frozenset({"message", "welcome"})


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    id: int
    dedupe_key: str
    platform: str
    recipient: str
    kind: str
    body: str
    member_id: int | None
    route: str = "message"
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SendResult:
    status: Literal["sent", "retry", "failed"]
    detail: str = ""
    platform_msg_id: str | None = None
    retry_after: float | None = None  # seconds, when the platform says how long to wait
    code: str = ""  # why it did not go, in a word: the platform's errcode, or e.g. "timeout"

    @classmethod
    def sent(cls, platform_msg_id: str | None = None) -> SendResult:
        return cls("sent", platform_msg_id=platform_msg_id)

    @classmethod
    def retry(cls, detail: str, retry_after: float | None = None, code: str = "") -> SendResult:
        return cls("retry", detail, retry_after=retry_after, code=code)

    @classmethod
    def failed(cls, detail: str, code: str = "") -> SendResult:
        return cls("failed", detail, code=code)


class Sender(Protocol):
    """What a platform client offers delivery. Retries inside one send are its own affair."""

    async def send(self, message: OutboundMessage) -> SendResult: ...


class DeliveryLoop:
    def __init__(
        self,
        sessions: SessionFactory,
        senders: Mapping[str, Sender],
        *,
        policy: DeliveryPolicy = DeliveryPolicy(),
        clock: Callable[[], datetime] = utcnow,
        batch_size: int = 100,
        concurrency: int = 8,
        max_attempts: int = 8,
        poll_interval: timedelta = timedelta(seconds=5),
        outcome_scheme: str = "value",
    ):
        self._sessions = sessions
        self._outcome_scheme = outcome_scheme  # the layer scheme a touch records
        self._senders = dict(senders)
        self._clock = clock
        self._policy = policy
        self._batch_size = batch_size
        self._slots = asyncio.Semaphore(concurrency)
        self._max_attempts = max_attempts
        self._poll_interval = poll_interval
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="delivery")

    async def close(self, grace: timedelta = timedelta(seconds=10)) -> None:
        """Finish the sends in flight, then stop; the rest stays pending in the outbox.

        A send still retrying after `grace` is cancelled: its row stays `sending` and is
        sent again on the next start (at least once; platforms dedupe where they can).
        """
        self._stopping = True
        self._wakeup.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace.total_seconds())
        except TimeoutError:
            log.warning("delivery still busy after %.0f s: stopping mid-send", grace.total_seconds())
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        async with self._sessions() as session, session.begin():
            released = await outbox.release_interrupted(session)
        if released:
            log.info("resumed %d outbox rows interrupted mid-send", released)
        while not self._stopping:
            self._wakeup.clear()
            try:
                sent = await self.run_once()
            except Exception:
                log.exception("delivery pass failed")
                sent = 0
            if sent == 0 and not self._stopping:
                await self._sleep_until_due()

    async def _sleep_until_due(self) -> None:
        timeout = self._poll_interval.total_seconds()
        async with self._sessions() as session:
            due = await outbox.next_due_at(session)
        if due is not None:
            timeout = min(timeout, max((due - self._clock()).total_seconds(), 0.0))
        try:
            await asyncio.wait_for(self._wakeup.wait(), timeout)
        except TimeoutError:
            pass

    async def run_once(self) -> int:
        """Claim and send one batch of due rows; returns how many were claimed."""
        async with self._sessions() as session, session.begin():
            rows = await outbox.claim_due(session, self._clock(), self._batch_size)
        await asyncio.gather(*(self._deliver(row) for row in rows))
        return len(rows)

    async def _deliver(self, row: OutboxEntry) -> None:
        assert row.id is not None
        async with self._slots, traced(request_id_in(row.meta)):
            async with self._sessions() as session:
                decision = await decide(session, row, self._policy, self._clock())
            if decision.verdict != "send":
                count_hold(decision.code)
                async with self._sessions() as session, session.begin():
                    if decision.verdict == "defer" and decision.until is not None:
                        await outbox.mark_deferred(session, row.id, decision.until, decision.reason)
                    else:
                        await outbox.mark_held(session, row.id, decision.reason)
                return
            result = await self._send(row)
            await self._record(row, result)

    async def _send(self, row: OutboxEntry) -> SendResult:
        sender = self._senders.get(row.platform)
        if sender is None:
            return SendResult.failed(f"no sender for platform {row.platform!r}")
        message = OutboundMessage(
            id=row.id or 0,
            dedupe_key=row.dedupe_key,
            platform=row.platform,
            recipient=row.recipient,
            kind=row.kind,
            body=row.body,
            member_id=row.member_id,
            route=row.route,
            meta=json.loads(row.meta or "{}"),
        )
        started = time.perf_counter()
        try:
            result = await sender.send(message)
        except Exception as error:  # a sender bug must not lose the message
            log.exception("sender for %s raised on outbox row %s", row.platform, row.id)
            result = SendResult.retry(f"{type(error).__name__}: {error}", code="exception")
        seconds = time.perf_counter() - started
        record_send(row.platform, row.route, result.status, result.code, seconds, row.meta, self._clock())
        log.debug("outbox row %s (%s): %s in %.0f ms %s", row.id, row.route, result.status, seconds * 1000, result.detail)
        return result

    async def _record(self, row: OutboxEntry, result: SendResult) -> None:
        assert row.id is not None
        now = self._clock()
        async with self._sessions() as session, session.begin():
            if result.status == "sent":
                await outbox.mark_sent(session, row.id, now, result.platform_msg_id)
                if row.member_id is not None and row.route in MESSAGE_ROUTES:
                    await record_interaction(
                        session, row.member_id, "message_out", row.platform, now, row.body,
                        ref=f"outbox:{row.id}",
                    )
                    if (source := source_of(row.dedupe_key, row.route, json.loads(row.meta or "{}"))) is not None:
                        await record_touch(session, row.member_id, now, source, f"outbox:{row.id}",
                                           staff_id=row.staff_id, scheme=self._outcome_scheme)
            elif result.status == "retry" and row.attempts < self._max_attempts:
                delay = retry_delay(row.attempts, result.retry_after)
                await outbox.retry_later(session, row.id, now + delay, result.detail)
            else:
                await outbox.mark_failed(session, row.id, result.detail)
                log.warning("outbox row %s failed: %s", row.id, result.detail)
