"""The dispatcher: takes inbox rows in order per sender and runs the handler chain.

Each row is handled in one transaction — member, interaction, tags, outbox rows and the
row's own `done` mark commit together — so a crash mid-chain leaves the row pending and
the next start simply handles it again. Rows of one sender are handled one after the
other; different senders run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from content_templates.renderer import Renderer
from handlers.actions import Action
from handlers.chain import Handler, PlatformHandler, checked_chain
from handlers.config import HandlerConfig
from handlers.context import HandlerContext, PlatformContext
from handlers.outbound import outbox_rows
from handlers.updates import MessageUpdate, Update, from_payload, kind_of
from storage.engine import SessionFactory
from storage.inbox import mark_done, pending_entries, record_failure
from storage.members import resolve_member
from storage.metrics import record_handling
from storage.models import InboxEntry, utcnow
from storage.outbox import enqueue
from storage.tracing import request_id_of, traced

log = logging.getLogger(__name__)


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
        clock: Callable[[], datetime] = utcnow,
        batch_size: int = 200,
        concurrency: int = 16,
        max_attempts: int = 3,
        poll_interval: timedelta = timedelta(seconds=5),
    ):
        self._sessions = sessions
        self._member_chain = checked_chain(member_chain)
        self._platform_chain = checked_chain(platform_chain)
        self._config = config
        self._renderer = renderer
        self._on_outbox = on_outbox
        self._clock = clock
        self._batch_size = batch_size
        self._slots = asyncio.Semaphore(concurrency)
        self._max_attempts = max_attempts
        self._poll_interval = poll_interval.total_seconds()
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """New inbox rows are committed: look now rather than at the next poll."""
        self._wakeup.set()

    def reconfigure(self, config: HandlerConfig, renderer: Renderer) -> None:
        """Rules and templates changed in the console: rows handled from now on use these
        (a row already in its transaction finishes with the old ones)."""
        self._config, self._renderer = config, renderer

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="dispatcher")

    async def close(self) -> None:
        """Finish the batch in hand, then stop; the rest waits in the inbox."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            try:
                handled = await self.run_once()
            except Exception:  # the database may be briefly away; keep the loop alive
                log.exception("dispatcher pass failed")
                handled = 0
            if handled == 0 and not self._stopping:
                try:
                    await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)
                except TimeoutError:
                    pass

    async def run_once(self) -> int:
        """Handle one batch of pending rows; returns how many were taken."""
        async with self._sessions() as session:
            entries = await pending_entries(session, self._batch_size)
        by_sender: dict[tuple[str, str], list[InboxEntry]] = {}
        for entry in entries:
            by_sender.setdefault((entry.platform, entry.sender), []).append(entry)
        await asyncio.gather(*(self._handle_in_order(rows) for rows in by_sender.values()))
        return len(entries)

    async def _handle_in_order(self, entries: list[InboxEntry]) -> None:
        async with self._slots:
            for entry in entries:
                if not await self._handle(entry):
                    return  # keep this sender's order: later rows wait for the retry

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
                await mark_done(session, entry.id, now)
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


def _display_name(update: Update) -> str | None:
    return update.sender_name if isinstance(update, MessageUpdate) else None
