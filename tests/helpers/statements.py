"""Counting the SQL an app runs: behavioural bounds for batching, never timings."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


@contextlib.contextmanager
def statements_matching(engine: AsyncEngine, pattern: re.Pattern[str]) -> Iterator[list[str]]:
    """Every statement matching `pattern` that `engine` runs while inside (an executemany
    counts once)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if pattern.match(statement):
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
