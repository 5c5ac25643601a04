"""Finding a row by its natural key, or creating it — safely when others race to create it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

Row = TypeVar("Row")


async def get_or_create(session: AsyncSession, lookup: Select[Any], make: Callable[[], Row]) -> Row:
    """The row `lookup` finds, else a new one from `make()`. The insert runs in a
    savepoint, so losing a race to another process (a unique-key clash) costs only
    a second look."""
    found = (await session.execute(lookup)).scalars().first()
    if found is not None:
        return found  # type: ignore[no-any-return]
    try:
        async with session.begin_nested():
            row = make()
            session.add(row)
            await session.flush()
        return row
    except IntegrityError:
        return (await session.execute(lookup)).scalars().one()  # type: ignore[no-any-return]
