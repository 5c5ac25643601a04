"""The dispatcher: claims inbox rows per member and runs the handler chain in order.

Each row is handled in one transaction — member, interaction, tags, outbox rows and the
row's own `done` mark commit together — so a crash mid-chain leaves the row pending and
the next start simply handles it again. A member's (platform, sender) rows are claimed
together, by one process, and handled one after the other; different members run
concurrently, up to `concurrency` at once, and a freed slot is filled at once — urgent
members (a welcome code waiting) first, then whoever waited longest. Welcomes themselves
go ahead of all that, in batches (handlers/early_welcome.py).

Claims are leases: this process renews its own while it works; if it dies, another
process takes the rows over once the lease has expired. The `done` mark only commits
while the claim is still ours, so a row taken over is handled once, by its new owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from content_templates.renderer import Renderer
from handlers.actions import Action
from handlers.chain import Handler, PlatformHandler, checked_chain
from handlers.config import HandlerConfig
from handlers.context import HandlerContext, PlatformContext
from handlers.early_welcome import send_welcomes_early
from handlers.give_way import GiveWay, never_busy
from handlers.outbound import outbox_rows
from handlers.updates import MessageUpdate, Update, from_payload, kind_of
from storage.engine import SessionFactory
from storage.inbox import (
    ClaimLost,
    claim_entries,
    mark_done,
    record_failure,
    release_all_claims,
    release_claims,
    renew_claims,
)
from storage.loops import Loops
from storage.members import resolve_member
from storage.metrics import record_handling
from storage.models import InboxEntry, as_utc, utcnow
from storage.outbox import enqueue
from storage.tracing import request_id_of, traced

log = logging.getLogger(__name__)


def process_name() -> str:
    """Who claims rows: host, pid and a random part (a restarted pid is someone else)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


class Dispatcher:
    def __init__(
        self,
        sessions: SessionFactory,
        member_chain: Sequence[Handler],
        platform_chain: Sequence[PlatformHandler],
        config: HandlerConfig,
        renderer: Renderer,
        *,
        on_outbox: Callable[[], None] = lambda: None,
        on_welcomes: Callable[[], None] | None = None,
        welcomes_first: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], datetime] = utcnow,
        concurrency: int = 16,
        urgent_extra: int = 8,
        max_attempts: int = 3,
        poll_interval: timedelta = timedelta(seconds=5),
        lease: timedelta = timedelta(seconds=30),
        owner: str | None = None,
        loops: Loops | None = None,
        give_way: GiveWay | None = None,
    ):
        self._sessions = sessions
        self._loops = loops or Loops()  # restarts the loop when it raises; /healthz reads its ticks
        self._member_chain = checked_chain(member_chain)
        self._platform_chain = checked_chain(platform_chain)
        self._config = config
        self._renderer = renderer
        self._on_outbox = on_outbox
        # Welcomes queued ahead of the line are announced to delivery, and the backlog
        # waits for them to be sent: on SQLite they share one connection.
        self._on_welcomes = on_welcomes or on_outbox
        self._welcomes_first = welcomes_first
        self._clock = clock
        # Where this process also answers callbacks, a burst of them comes first.
        self._give_way = give_way or GiveWay(never_busy)
        self._concurrency = concurrency
        self._urgent_extra = urgent_extra
        self._urgent_waiting = True  # look for urgent rows on the first pass
        self._max_attempts = max_attempts
        self._poll_interval = poll_interval.total_seconds()
        self._lease = lease
        self.owner = owner or process_name()
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._members: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """New inbox rows are committed: look now rather than at the next poll."""
        self._wakeup.set()

    def wake_urgent(self) -> None:
        """An urgent row is committed: take it even if every slot is busy with backlog."""
        self._urgent_waiting = True
        self._wakeup.set()

    def reconfigure(self, config: HandlerConfig, renderer: Renderer) -> None:
        """Rules and templates changed in the console: rows handled from now on use these
        (a row already in its transaction finishes with the old ones)."""
        self._config, self._renderer = config, renderer

    def start(self) -> None:
        self._task = self._loops.run("dispatcher", self._run)

    async def close(self) -> None:
        """Finish the members in hand, hand back what is claimed and not yet begun, stop."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        renewing = asyncio.create_task(self._renew_claims(), name="dispatcher-leases")
        try:
            while not self._stopping:
                self._wakeup.clear()
                taken = 0
                try:
                    taken = await self.run_once()
                    self._loops.tick("dispatcher")
                except Exception:  # the database may be briefly away; keep the loop alive
                    log.exception("dispatcher pass failed")
                    self._urgent_waiting = True
                if self._stopping:
                    break
                if taken == 0 or len(self._members) >= self._concurrency and not self._urgent_waiting:
                    # Woken by new rows or by a member finishing (a free slot).
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)
                    except TimeoutError:
                        # Another process may have stored an urgent row: look, busy or not.
                        self._urgent_waiting = True
            if self._members:
                await asyncio.gather(*self._members, return_exceptions=True)
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            with contextlib.suppress(Exception):
                async with self._sessions() as session, session.begin():
                    await release_all_claims(session, self.owner)

    async def run_once(self) -> int:
        """Queue the welcomes waiting when members are in hand (handlers/early_welcome.py),
        then claim the rows of as many members as there are free slots and start handling
        each member's rows in order; returns how many rows were claimed. With every slot
        busy, members with an urgent row (one whose welcome could not go ahead: her
        earlier rows were in hand) still get up to `urgent_extra` more."""
        # With nothing in hand a welcome row is handled whole as fast (and one transaction
        # cheaper); once members are in hand, welcomes go ahead of them.
        if self._urgent_waiting and self._members and await send_welcomes_early(
                self._sessions, self._config, self._renderer, self._clock()):
            self._on_welcomes()
        urgent_only = len(self._members) >= self._concurrency
        free = self._concurrency + (self._urgent_extra if urgent_only else 0) - len(self._members)
        if free <= 0 or (urgent_only and not self._urgent_waiting):
            return 0
        self._urgent_waiting = False
        async with self._sessions() as session, session.begin():
            entries = await claim_entries(
                session, self.owner, self._clock(), self._lease, free, urgent_only=urgent_only
            )
        by_sender: dict[tuple[str, str], list[InboxEntry]] = {}
        for entry in entries:
            by_sender.setdefault((entry.platform, entry.sender), []).append(entry)
        for rows in by_sender.values():
            task = asyncio.create_task(self._handle_in_order(rows))
            self._members.add(task)
            task.add_done_callback(self._member_done)
        return len(entries)

    def _member_done(self, task: asyncio.Task[None]) -> None:
        self._members.discard(task)
        self._wakeup.set()  # a slot is free

    async def _renew_claims(self) -> None:
        """Keep this process's claims alive while it works on them."""
        while True:
            await asyncio.sleep(self._lease.total_seconds() / 3)
            try:
                async with self._sessions() as session, session.begin():
                    await renew_claims(session, self.owner, self._clock(), self._lease)
            except Exception:
                log.exception("renewing inbox claims failed")

    async def _handle_in_order(self, entries: list[InboxEntry]) -> None:
        for entry in entries:
            if self._welcomes_first is not None:
                await self._welcomes_first()
            try:
                async with self._give_way.turn(waited=_seconds_waited(entry, self._clock())):
                    carry_on = not self._stopping and await self._handle(entry)
            except Exception:  # even recording the failure failed: the database is away
                log.exception("handling inbox row %s failed", entry.id)
                carry_on = False
            if not carry_on:
                # Keep this member's order: her later rows wait for the retry, claimed
                # afresh (by whichever process is free) on a later pass.
                try:
                    async with self._sessions() as session, session.begin():
                        await release_claims(session, self.owner, entry.platform, entry.sender)
                except Exception:
                    log.exception("releasing inbox claims failed")  # they expire anyway
                return

    async def _handle(self, entry: InboxEntry) -> bool:
        """Handle one row, its log lines and outbox rows under its request id."""
        with traced(request_id_of(entry.key)):
            return await self._handle_row(entry)

    async def _handle_row(self, entry: InboxEntry) -> bool:
        assert entry.id is not None
        now, started, kind = self._clock(), time.perf_counter(), "unreadable"
        try:
            update = from_payload(entry.payload)
            kind = kind_of(update)
            async with self._sessions() as session, session.begin():
                actions: list[Action] = []
                member_id: int | None = None
                if update.actor == "member":
                    member = await resolve_member(
                        session, update.platform, update.sender, _display_name(update), now
                    )
                    member_id = member.id
                    ctx = HandlerContext(session, entry.id, now, self._config, self._renderer, member=member)
                    for handler in self._member_chain:
                        actions.extend(await handler(update, ctx))
                        if ctx.answered:
                            break
                else:
                    platform_ctx = PlatformContext(session, entry.id, now, self._config, self._renderer)
                    for platform_handler in self._platform_chain:
                        actions.extend(await platform_handler(update, platform_ctx))
                await enqueue(session, outbox_rows(entry.id, update, member_id, actions, entry.received_at), now)
                await mark_done(session, entry.id, now, self.owner)
        except ClaimLost:
            log.warning("inbox row %s was taken over by another process; left to it", entry.id)
            return False
        except Exception as error:
            log.exception("handling inbox row %s failed", entry.id)
            record_handling(kind, time.perf_counter() - started, failed=True)
            async with self._sessions() as session, session.begin():
                parked = await record_failure(
                    session, entry.id, f"{type(error).__name__}: {error}", now, self._max_attempts
                )
            return parked
        record_handling(kind, time.perf_counter() - started, failed=False)
        log.debug("handled inbox row %s (%s) with %d outbox rows", entry.id, kind, len(actions))
        self._on_outbox()
        return True


def _seconds_waited(entry: InboxEntry, now: datetime) -> float:
    return (now - as_utc(entry.received_at)).total_seconds()


def _display_name(update: Update) -> str | None:
    return update.sender_name if isinstance(update, MessageUpdate) else None
