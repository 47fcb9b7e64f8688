"""Counting the SQL an app runs: behavioural bounds for batching, never timings."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


@contextlib.contextmanager
def statements_matching(
    engine: AsyncEngine, pattern: re.Pattern[str], *, bound: object = None
) -> Iterator[list[str]]:
    """Every statement matching `pattern` that `engine` runs while inside (an executemany
    counts once); with `bound`, only those given that value as a parameter."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if pattern.match(statement) and (bound is None or _binds(parameters, bound)):
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


def _binds(parameters: Any, value: object) -> bool:
    if isinstance(parameters, dict):
        return value in parameters.values()
    if isinstance(parameters, (list, tuple)):
        return any(
            p == value or (isinstance(p, (dict, list, tuple)) and _binds(p, value))
            for p in parameters
        )
    return False
