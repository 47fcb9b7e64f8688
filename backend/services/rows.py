"""Fetching one row by its key, or NotFoundError (404) naming what was asked for."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from backend.services.errors import NotFoundError

Row = TypeVar("Row")


async def get_or_404(
    db: AsyncSession, model: type[Row], key: Any, what: str, **options: Any
) -> Row:
    """`db.get(model, key, **options)`, raising NotFoundError("{what} {key} not found")."""
    row = await db.get(model, key, **options)
    if row is None:
        raise NotFoundError(f"{what} {key} not found")
    return row
