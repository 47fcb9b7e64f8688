"""Fetching one row by its key, or NotFoundError (404) naming what was asked for."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

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
