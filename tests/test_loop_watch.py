"""An operator learns when the server's event loop stalled, for how long and on what code:
while it stalls no charger, driver or operator is answered."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import time
from collections.abc import AsyncIterator

import pytest

from backend.app import create_app
from backend.loop_watch import LoopWatch
from backend.settings import Settings
from tests.helpers.server import served


def _hold_the_loop(seconds: float) -> None:
    """Code that blocks the event loop's thread, as a slow synchronous call would."""
    time.sleep(seconds)


def _collect_a_big_heap() -> None:
    """A full garbage collection over enough cyclic objects to be a pause of its own."""
    cycles = []
    for _ in range(200_000):
        node: list[object] = []
        node.append(node)
        cycles.append(node)
    gc.collect()
    del cycles


@contextlib.asynccontextmanager
async def _watching(threshold: float) -> AsyncIterator[LoopWatch]:
    """A loop watch on the running loop while inside, stopped (thread joined) afterwards."""
    watch = LoopWatch(threshold)
    watch.start()
    try:
        yield watch
    finally:
        await watch.stop()


def _stall_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "backend.loop_watch"]


async def test_a_stall_is_logged_once_with_its_length_and_the_code_that_held_the_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="backend.loop_watch")
    async with _watching(0.05) as watch:
        await asyncio.sleep(0.1)
        _hold_the_loop(0.4)
        await asyncio.sleep(0.1)
    held = [line for line in _stall_lines(caplog) if "_hold_the_loop" in line]
    assert len(held) == 1, _stall_lines(caplog)
    stalled_ms = float(re.search(r"stalled (\d+) ms", held[0]).group(1))  # type: ignore[union-attr]
    assert 380 <= stalled_ms < 2000
    assert watch.stalls >= 1 and watch.longest >= 0.38


async def test_a_stall_in_the_garbage_collector_says_how_much_of_it_the_collector_took(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="backend.loop_watch")
    async with _watching(0.02):
        await asyncio.sleep(0.05)
        began = time.perf_counter()
        _collect_a_big_heap()
        took = time.perf_counter() - began
        await asyncio.sleep(0.05)
    lines = [line for line in _stall_lines(caplog) if "_collect_a_big_heap" in line]
    assert took >= 0.02 and lines, (took, _stall_lines(caplog))
    in_collection = int(re.search(r"\((\d+) ms of it in garbage", lines[0]).group(1))  # type: ignore[union-attr]
    assert in_collection >= 1


async def test_a_loop_that_keeps_turning_is_not_reported() -> None:
    # well above what a busy test machine stalls between two awaits
    async with _watching(0.5) as watch:
        for _ in range(20):
            await asyncio.sleep(0.02)
    assert watch.stalls == 0


async def test_the_served_app_watches_its_loop_and_stops_the_watcher_on_shutdown(
    live_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="backend.loop_watch")
    settings = live_settings.model_copy(update={"loop_stall_log_ms": 50.0})
    async with served(create_app(settings)) as live:
        watch = live.app.state.loop_watch
        assert isinstance(watch, LoopWatch)
        await asyncio.sleep(0.1)
        _hold_the_loop(0.3)
        await asyncio.sleep(0.1)
        assert any("_hold_the_loop" in line for line in _stall_lines(caplog))
    assert watch._thread is not None and not watch._thread.is_alive()


async def test_a_zero_threshold_turns_the_watch_off(live_settings: Settings) -> None:
    settings = live_settings.model_copy(update={"loop_stall_log_ms": 0.0})
    async with served(create_app(settings)) as live:
        assert live.app.state.loop_watch is None
