"""Sends that went through are recorded many to a transaction.

A welcome burst sends hundreds of messages a second; giving each its own transaction
(sent mark, interaction, touch) made every record queue for the database behind the
others. Like the inbox writer, this group-commits: while one batch commits, the next
gathers. A batch that fails is recorded row by row, so one bad row fails alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from storage.engine import SessionFactory

log = logging.getLogger(__name__)

Item = TypeVar("Item")


class GroupCommit(Generic[Item]):
    """`add` returns once its item has committed, written by `write(session, items)`
    together with the others gathered meanwhile."""

    def __init__(self, sessions: SessionFactory, write: Callable[[AsyncSession, list[Item]], Awaitable[None]]):
        self._sessions = sessions
        self._write = write
        self._queue: list[tuple[Item, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def add(self, item: Item) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((item, done))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="group-commit")
        await done

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await self._commit(batch)
            except Exception:
                if len(batch) == 1:
                    _fail(batch[0][1])
                    continue
                for one in batch:  # alone, so a bad row fails alone
                    try:
                        await self._commit([one])
                    except Exception:
                        _fail(one[1])
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def _commit(self, batch: list[tuple[Item, asyncio.Future[None]]]) -> None:
        async with self._sessions() as session, session.begin():
            await self._write(session, [item for item, _ in batch])


def _fail(done: asyncio.Future[None]) -> None:
    log.exception("recording a send failed")
    if not done.done():
        done.set_exception(RuntimeError("recording the send failed; its claim lapses and it is tried again"))
