"""The delivery loop: a long-lived task that sends due outbox rows through the platforms.

It claims rows (with this process as owner and a lease it renews), asks the policy gate
at send time (scheduler/gate.py: an opt-out that arrives after a message was queued
still stops it; quiet hours defer; weekly caps hold), sends through the platform's
`Sender`, and records the outcome on the row: sent, failed with the reason, or pending
again after a backoff.

No batch barrier: each row is its own task, and a route has a bounded number of sends
in flight (its lane), so a slow or failing route fills its own lane and nothing else.
Welcomes are claimed first, have their own lane, and retry within their 20 s: one that
cannot make it is recorded `expired` with the reason and its owner asked to greet by
hand (scheduler/welcome_missed.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from secrets import token_hex
from typing import Any, Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from scheduler.gate import DeliveryPolicy, decide
from scheduler.policy import ALWAYS_ALLOWED, retry_delay
from scheduler.sent_records import GroupCommit
from scheduler.welcome_missed import prompt_owner
from storage import outbox
from storage.engine import SessionFactory
from storage.interactions import record_interactions
from storage.loops import Loops
from storage.metrics import WELCOME_CODE_EXPIRED, count_hold, record_send
from storage.models import OutboxEntry, utcnow
from storage.outcomes import NewTouch, record_touches, source_of
from storage.tracing import request_id_in, traced

log = logging.getLogger(__name__)
# Routes that put words in front of a member, and so count as interactions.
MESSAGE_ROUTES = frozenset({"message", "welcome"})
WELCOME = "welcome"
# Reads and bookkeeping that can wait a few seconds: none is started while welcomes are
# being sent (they share the database and the platform with them). Replies and staff
# prompts (route "message") are not among them.
BACKGROUND_ROUTES = frozenset({"profile", "group", "mark_tag", "corp_tags", "moment_read", "moment_result"})
# A welcome code lives 20 s from the callback (WECOM.md §4.4).
WELCOME_LIFETIME = timedelta(seconds=20)
# Not worth a try with less left than this: the call itself takes a round trip.
WELCOME_MARGIN = timedelta(seconds=0.5)


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
    attempts: int = 1  # this one included: above 1, an earlier try happened
    last_error: str = ""  # what the earlier try left ("… outcome unknown" when it never answered)
    deadline: datetime | None = None  # a welcome's: the platform refuses it after this
    queued_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    status: Literal["sent", "retry", "failed"]
    detail: str = ""
    platform_msg_id: str | None = None
    retry_after: float | None = None  # seconds, when the platform says how long to wait
    code: str = ""  # why it did not go, in a word: the platform's errcode, or e.g. "timeout"
    # When set on a failure: too late rather than refused (a welcome code that expired).
    expired: bool = False

    @classmethod
    def sent(cls, platform_msg_id: str | None = None) -> SendResult:
        return cls("sent", platform_msg_id=platform_msg_id)

    @classmethod
    def retry(cls, detail: str, retry_after: float | None = None, code: str = "") -> SendResult:
        return cls("retry", detail, retry_after=retry_after, code=code)

    @classmethod
    def failed(cls, detail: str, code: str = "") -> SendResult:
        return cls("failed", detail, code=code)

    @classmethod
    def too_late(cls, detail: str, code: str = "expired") -> SendResult:
        return cls("failed", detail, code=code, expired=True)


class Sender(Protocol):
    """What a platform client offers delivery. Retries inside one send are its own affair."""

    async def send(self, message: OutboundMessage) -> SendResult: ...


def process_owner() -> str:
    """This process's name on its claims: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{token_hex(3)}"


def welcome_deadline(row: OutboxEntry) -> datetime:
    """20 s after the callback arrived (its time rides in the row's meta), else after queueing."""
    received = json.loads(row.meta or "{}").get("received_at")
    start = datetime.fromisoformat(received) if received else row.created_at
    return _aware(start) + WELCOME_LIFETIME


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)  # SQLite's are naive UTC


def welcome_retry_delay(attempt: int) -> timedelta:
    """Seconds, not the minute a 45009 asks for: the code is gone by then anyway."""
    return timedelta(seconds=min(0.25 * 2 ** max(attempt - 1, 0), 2.0))


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
        welcome_concurrency: int = 32,
        route_concurrency: Mapping[str, int] | None = None,
        max_attempts: int = 8,
        poll_interval: timedelta = timedelta(seconds=5),
        lease: timedelta = timedelta(seconds=60),
        owner: str | None = None,
        loops: Loops | None = None,
        outcome_scheme: str = "value",
    ):
        """`concurrency`: sends in flight per route (`route_concurrency` overrides a
        route's; welcomes get `welcome_concurrency`). `lease`: how long a claim lasts
        unrenewed; renewed every third of it while this process lives."""
        self._sessions = sessions
        self._loops = loops or Loops()  # restarts the loop when it raises; /healthz reads its ticks
        self._outcome_scheme = outcome_scheme  # the layer scheme a touch records
        self._senders = dict(senders)
        self._clock = clock
        self._policy = policy
        self._batch_size = batch_size
        self._lanes = {WELCOME: welcome_concurrency, **(route_concurrency or {})}
        self._default_lane = concurrency
        self._max_attempts = max_attempts
        self._poll_interval = poll_interval
        self._lease = lease
        self.owner = owner or process_owner()
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._busy: Counter[str] = Counter()  # route -> sends in flight
        self._waiting: dict[str, deque[OutboxEntry]] = {}  # claimed, waiting for their lane
        self._claimed: set[int] = set()  # every row this loop holds (in flight or waiting)
        self._running: set[asyncio.Task[None]] = set()
        self._next_reap = 0.0
        self._sent = GroupCommit(sessions, self._record_sent)  # many sends recorded per transaction
        # Set while no welcome is in hand or known to wait in the outbox: the dispatcher
        # holds its backlog until then, so the database serves welcomes first.
        self._welcomes_settled = asyncio.Event()
        self._welcomes_settled.set()
        self._more_welcomes = False

    def reconfigure(self, policy: DeliveryPolicy) -> None:
        """Quiet hours or caps changed in the console: asked from the next row on."""
        self._policy = policy

    def wake(self) -> None:
        self._wakeup.set()

    def expect_welcomes(self) -> None:
        """Welcomes were just queued: claim them now, and count them as waiting meanwhile."""
        self._more_welcomes = True
        self._welcomes_settled.clear()
        self._wakeup.set()

    async def welcomes_settled(self, longest: float = 1.0) -> None:
        """Return once no welcome is in hand or waiting (or after `longest` seconds, so a
        platform that stalls welcomes holds nothing else back for long)."""
        if not self._welcomes_settled.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._welcomes_settled.wait(), longest)

    def _note_welcomes(self) -> None:
        if self._more_welcomes or self._busy[WELCOME] > 0 or self._waiting.get(WELCOME):
            self._welcomes_settled.clear()
        else:
            self._welcomes_settled.set()

    def start(self) -> None:
        self._task = self._loops.run("delivery", self._run)
        self._heartbeat = asyncio.create_task(self._renew_forever(), name="delivery-claims")

    async def close(self, grace: timedelta = timedelta(seconds=10)) -> None:
        """Finish the sends in flight, then stop; the rest stays pending in the outbox.

        Rows claimed but not started are handed back. A send still running after `grace`
        is cancelled: its claim lapses and the reaper of any process takes it over.
        """
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._release_waiting()
        if self._running:
            _, late = await asyncio.wait(set(self._running), timeout=grace.total_seconds())
            if late:
                log.warning("delivery still busy after %.0f s: stopping %d sends mid-send", grace.total_seconds(), len(late))
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            self._wakeup.clear()
            try:
                claimed = await self._fill()
                self._loops.tick("delivery")
                if claimed == 0 and not self._stopping:
                    await self._sleep_until_due()
                failures = 0
            except Exception:
                failures += 1
                log.exception("delivery pass failed (%d in a row)", failures)
                # A database blip: back off, then carry on by ourselves.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), min(2.0 ** failures, 30.0))

    async def _sleep_until_due(self) -> None:
        """Until a row of a route with room falls due, a claim lapses (and the reaper may
        run), a lane frees or new rows are queued (`wake`), or the poll interval ends."""
        timeout = self._poll_interval.total_seconds()
        now = self._clock()
        async with self._sessions() as session:
            due = await outbox.next_due_at(session, self._full_routes())
            lapse = await outbox.next_lapse_at(session)
        if due is not None:
            timeout = min(timeout, max((_aware(due) - now).total_seconds(), 0.0))
        if lapse is not None:
            reap_in = max((_aware(lapse) - now).total_seconds(), self._next_reap - time.monotonic(), 0.0)
            timeout = min(timeout, reap_in)
        try:
            await asyncio.wait_for(self._wakeup.wait(), timeout)
        except TimeoutError:
            pass

    def _full_routes(self) -> list[str]:
        """Routes not to claim from now: lanes without room, and background work while
        welcomes are in flight."""
        full = {r for r in set(self._busy) | set(self._waiting) if self._room(r) <= 0}
        if self._busy[WELCOME] > 0:
            full |= BACKGROUND_ROUTES
        return sorted(full)

    async def run_once(self) -> int:
        """Claim one batch of due rows and wait until each is sent or given up; returns
        how many were claimed (tests and commands; the loop itself never waits on a batch)."""
        claimed = await self._fill()
        while self._running:
            await asyncio.gather(*set(self._running))
        return claimed

    # -- claiming --------------------------------------------------------------------------

    def _lane(self, route: str) -> int:
        return self._lanes.get(route, self._default_lane)

    async def _fill(self) -> int:
        """Reap lapsed claims when due, then claim what the free lanes can take now."""
        now = self._clock()
        if time.monotonic() >= self._next_reap:
            async with self._sessions() as session, session.begin():
                reaped = await outbox.reap_expired(session, now)
            if reaped:
                log.warning("took back %d outbox rows whose claim lapsed (a process stopped mid-send)", reaped)
            self._next_reap = time.monotonic() + max(self._lease.total_seconds() / 4, 0.5)
        room = self._batch_size - len(self._claimed)
        if room <= 0 or self._stopping:
            return 0
        # A route whose lane is full is not claimed from at all.
        async with self._sessions() as session, session.begin():
            rows = await outbox.claim_due(
                session, now, room, self.owner, self._lease, skip_routes=self._full_routes(), room=self._room,
            )
        welcome_room = min(self._room(WELCOME), room)
        for row in rows:
            assert row.id is not None
            self._claimed.add(row.id)
            self._waiting.setdefault(row.route, deque()).append(row)
        if welcome_room > 0:  # (a full lane claimed nothing and learnt nothing)
            # As many claimed as there was room for: more may be waiting behind them.
            self._more_welcomes = sum(row.route == WELCOME for row in rows) >= welcome_room
        for route in {row.route for row in rows}:
            self._start_waiting(route)
        self._note_welcomes()
        return len(rows)

    def _room(self, route: str) -> int:
        """Free places in the route's lane: no more of it is claimed than can start now,
        so a backlog of one route never takes the claims another route needs."""
        return self._lane(route) - self._busy[route] - len(self._waiting.get(route, ()))

    def _start_waiting(self, route: str) -> None:
        waiting = self._waiting.get(route)
        while waiting and self._busy[route] < self._lane(route):
            row = waiting.popleft()
            self._busy[route] += 1
            task = asyncio.create_task(self._deliver_in_lane(row), name=f"deliver-{row.id}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _deliver_in_lane(self, row: OutboxEntry) -> None:
        try:
            await self._deliver(row)
        except Exception:  # the row's claim lapses and another pass takes it again
            log.exception("delivering outbox row %s failed", row.id)
        finally:
            self._busy[row.route] -= 1
            self._claimed.discard(row.id or 0)
            self._start_waiting(row.route)
            self._note_welcomes()
            self._wakeup.set()  # a lane has room again

    async def _release_waiting(self) -> None:
        ids = [row.id for rows in self._waiting.values() for row in rows if row.id is not None]
        self._waiting.clear()
        if ids:
            async with self._sessions() as session, session.begin():
                await outbox.release(session, self.owner, ids)
            self._claimed.difference_update(ids)

    async def _renew_forever(self) -> None:
        every = max(self._lease.total_seconds() / 3, 0.2)
        while True:
            await asyncio.sleep(every)
            try:
                await self.renew_claims()
            except Exception:
                log.exception("renewing outbox claims failed")

    async def renew_claims(self) -> int:
        """Keep this process's claims alive while it sends them."""
        ids = sorted(self._claimed)
        if not ids:
            return 0
        async with self._sessions() as session, session.begin():
            return await outbox.renew_claims(session, self.owner, ids, self._clock() + self._lease)

    # -- one row ---------------------------------------------------------------------------

    async def _deliver(self, row: OutboxEntry) -> None:
        assert row.id is not None
        async with traced(request_id_in(row.meta)):
            deadline = welcome_deadline(row) if row.route == WELCOME else None
            if deadline is not None and self._clock() >= deadline - WELCOME_MARGIN:
                late = (self._clock() - deadline + WELCOME_LIFETIME).total_seconds()
                result = SendResult.too_late(f"welcome code expired before it could be sent ({late:.1f} s after the callback)")
                record_send(row.platform, row.route, result.status, result.code, 0.0, row.meta, self._clock())
                await self._record(row, result)
                return
            if row.kind not in ALWAYS_ALLOWED:  # service, prompts and requests always go, at once
                async with self._sessions() as session:
                    decision = await decide(session, row, self._policy, self._clock())
                if decision.verdict != "send":
                    count_hold(decision.code)
                    async with self._sessions() as session, session.begin():
                        if decision.verdict == "defer" and decision.until is not None:
                            await outbox.mark_deferred(session, row.id, decision.until, decision.reason, self.owner)
                        else:
                            await outbox.mark_held(session, row.id, decision.reason, self.owner)
                    return
            result = await self._send(row, deadline)
            await self._record(row, result)

    async def _send(self, row: OutboxEntry, deadline: datetime | None = None) -> SendResult:
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
            attempts=row.attempts,
            last_error=row.last_error or "",
            deadline=deadline,
            queued_at=_aware(row.created_at),
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

    async def _record_sent(self, session: AsyncSession, sent: list[tuple[OutboxEntry, SendResult]]) -> None:
        """Sends that went through: marked sent, and those that put words in front of a
        member recorded as her interaction and, when they count, as a touch."""
        now = self._clock()
        marked = await outbox.mark_sent_many(
            session, [(row.id or 0, result.platform_msg_id) for row, result in sent], now, self.owner)
        spoken = [row for row, _ in sent if row.id in marked and row.member_id is not None and row.route in MESSAGE_ROUTES]
        await record_interactions(session, [
            # A person's reply from the console is the staff's words, not ours.
            {"member_id": row.member_id, "kind": "staff_out" if '"by_staff"' in (row.meta or "") else "message_out",
             "platform": row.platform, "at": now, "text": row.body, "ref": f"outbox:{row.id}"}
            for row in spoken
        ])
        await record_touches(session, [
            NewTouch(row.member_id, now, source, f"outbox:{row.id}", row.staff_id)  # type: ignore[arg-type]
            for row in spoken
            if (source := source_of(row.dedupe_key, row.route, json.loads(row.meta or "{}"))) is not None
        ], self._outcome_scheme)

    async def _record(self, row: OutboxEntry, result: SendResult) -> None:
        assert row.id is not None
        if result.status == "sent":
            await self._sent.add((row, result))
            return
        now = self._clock()
        welcome = row.route == WELCOME
        async with self._sessions() as session, session.begin():
            if result.status == "retry" and row.attempts < self._max_attempts:
                if not welcome:
                    delay = retry_delay(row.attempts, result.retry_after)
                    await outbox.retry_later(session, row.id, now + delay, result.detail, self.owner)
                    return
                delay = welcome_retry_delay(row.attempts)
                if now + delay < welcome_deadline(row) - WELCOME_MARGIN:
                    await outbox.retry_later(session, row.id, now + delay, result.detail, self.owner)
                    return
                result = SendResult.too_late(f"no try left within the welcome code's 20 s; last: {result.detail}", result.code)
            expired = welcome and (result.expired or result.code == WELCOME_CODE_EXPIRED)
            if expired:
                marked = await outbox.mark_expired(session, row.id, result.detail, self.owner)
            else:
                marked = await outbox.mark_failed(session, row.id, result.detail, self.owner)
            log.warning("outbox row %s %s: %s", row.id, "expired" if expired else "failed", result.detail)
            if welcome and marked and not await prompt_owner(session, row, result.detail, now):
                log.warning("welcome row %s not sent and its member has no owner to greet by hand", row.id)
        if welcome:
            self._wakeup.set()  # the owner's prompt is due now
