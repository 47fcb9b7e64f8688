"""Stalls of the event loop, logged with what blocked it.

One process answers every charger from one event loop: while the loop runs one piece of
code, every other answer waits. A watcher thread notices when the loop has not turned for
`threshold` seconds and takes the loop thread's stack then; when the loop turns again the
stall is logged once, with its length, that stack, and how much of it the garbage collector
took (its pauses hold the interpreter, so the stack is taken only after them and shows where
the loop went on, not what the collector was doing).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import threading
import time
import traceback
from typing import Any

log = logging.getLogger(__name__)

STACK_FRAMES = 12  # innermost frames of the loop thread's stack in a stall's log line


class LoopWatch:
    """Log every stall of the running event loop of at least `threshold` seconds."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.tick = threshold / 4
        self.stalls = 0
        self.longest = 0.0
        self._beat = time.monotonic()
        self._stack: str | None = None
        self._collecting_since: float | None = None
        self._collected_since_beat = 0.0
        self._loop_thread = threading.get_ident()
        self._stopped = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Watch the running loop (call from inside it)."""
        self._loop_thread = threading.get_ident()
        self._beat = time.monotonic()
        self._task = asyncio.create_task(self._beats())
        self._thread = threading.Thread(target=self._watch, name="loop-watch", daemon=True)
        self._thread.start()
        gc.callbacks.append(self._on_collection)

    async def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_collection)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    async def _beats(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.tick)
            self._beat = now = time.monotonic()
            stalled = now - before - self.tick
            if stalled >= self.threshold:
                self._report(stalled)
            self._stack = None
            self._collected_since_beat = 0.0

    def _report(self, stalled: float) -> None:
        self.stalls += 1
        self.longest = max(self.longest, stalled)
        log.warning(
            "event loop stalled %.0f ms (%.0f ms of it in garbage collection); "
            "the loop thread was at:\n%s",
            stalled * 1000,
            self._collected_since_beat * 1000,
            self._stack or "  (no stack taken: the interpreter was held throughout)\n",
        )

    def _watch(self) -> None:
        """The watcher thread: take the loop thread's stack once per stall."""
        while not self._stopped.wait(self.tick):
            if self._stack is None and time.monotonic() - self._beat > self.threshold + self.tick:
                frame = sys._current_frames().get(self._loop_thread)
                if frame is not None:
                    self._stack = "".join(traceback.format_stack(frame, limit=STACK_FRAMES))

    def _on_collection(self, phase: str, _info: dict[str, Any]) -> None:
        if threading.get_ident() != self._loop_thread:
            return
        if phase == "start":
            self._collecting_since = time.monotonic()
        elif self._collecting_since is not None:
            self._collected_since_beat += time.monotonic() - self._collecting_since
            self._collecting_since = None
