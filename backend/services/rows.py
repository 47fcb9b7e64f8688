"""Fetching one row by its key, or NotFoundError (404) naming what was asked for; moving a
row's status along its lifecycle by compare-and-set."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db import utcnow
from backend.lifecycles import Lifecycle
from backend.services.errors import NotFoundError

Row = TypeVar("Row")


async def get_or_404(
    db: AsyncSession, model: type[Row], key: Any, what: str, **options: Any
) -> Row:
    """`db.get(model, key, **options)`, raising NotFoundError("{what} {key} not found").

    A text key is quoted (`charger 'CP-1' not found`), a number is not.
    """
    row = await db.get(model, key, **options)
    if row is None:
        shown = repr(key) if isinstance(key, str) else key
        raise NotFoundError(f"{what} {shown} not found")
    return row


async def move_status(
    db: AsyncSession,
    model: Any,
    row_id: int,
    lifecycle: Lifecycle[Any],
    to: StrEnum,
    **values: Any,
) -> bool:
    """Compare-and-set of `model.status` to `to`, only from the statuses `lifecycle` allows
    before it (in the caller's transaction); False if the row had moved on. A move to a
    terminal status stamps `ended_at` unless given."""
    if to in lifecycle.terminal:
        values.setdefault("ended_at", utcnow())
    result = await db.execute(
        update(model)
        .where(model.id == row_id, model.status.in_(lifecycle.sources(to)))
        .values(status=to, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))
