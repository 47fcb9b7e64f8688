"""Garbage collection for a process holding thousands of charger sockets.

CPython's full collection scans every object the collector tracks. With 10,000 chargers
connected that is about four million objects and a pause of 0.5–1.5 s during which no
charger is answered: every second or two during a connect storm, every minute or two in
steady state (measured: docs/performance.md, "Garbage collection"). Nearly all of those
objects belong to the sockets and live for hours; a full pass finds a few hundred garbage.

`CollectorPolicy` freezes (`gc.freeze`) what survives each full collection, so later full
collections scan only newer objects. Frozen objects are still freed by reference counting
the moment nothing refers to them; only reference cycles among them that turn to garbage
(parts of a charger's closed socket) wait for the next thawed pass, which runs every
`GC_FULL_PASS_SECONDS`: then everything is thawed, collected once, and frozen again.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from typing import Any

log = logging.getLogger(__name__)


class CollectorPolicy:
    """Freeze the survivors of every full collection; thaw and collect all every `full_every`."""

    def __init__(self, full_every: float) -> None:
        self.full_every = full_every
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Collect and freeze what the started app holds; from now on, after every full pass."""
        gc.callbacks.append(self._after_collection)
        gc.collect()  # the callback freezes the survivors
        self._task = asyncio.create_task(self._thawed_passes())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._after_collection)
        gc.unfreeze()

    def thawed_pass(self) -> int:
        """Thaw every frozen object and collect once (survivors are frozen again): the
        unreachable objects found."""
        began = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        log.info(
            "full garbage collection: %d unreachable, %d objects kept frozen, %.0f ms",
            found,
            gc.get_freeze_count(),
            (time.perf_counter() - began) * 1000,
        )
        return found

    def _after_collection(self, phase: str, info: dict[str, Any]) -> None:
        # The collector has just emptied the younger generations into the oldest and freed
        # what was unreachable: the oldest now holds exactly the survivors.
        if phase == "stop" and info["generation"] == 2:
            gc.freeze()

    async def _thawed_passes(self) -> None:
        while True:
            await asyncio.sleep(self.full_every)
            self.thawed_pass()
