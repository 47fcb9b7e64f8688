"""Waiting for the system under test: poll for a positive signal, never sleep blindly.

`eventually` is the one poll. `background_work_done` is the positive signal that what the
app started in the background (notifications, payment calls) has finished, for asserting that
something did *not* follow. `settle` is the blind wait left where no such signal exists.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import FastAPI

T = TypeVar("T")

POLL_INTERVAL = 0.05


async def eventually(
    probe: Callable[[], Awaitable[T]],
    check: Callable[[T], object],
    within: float = 15,
    interval: float = POLL_INTERVAL,
) -> T:
    """Poll `probe` until `check` holds for its value; that value, or fail with the last one.

    An `AssertionError` raised by `check` counts as "not yet"; after `within` seconds the
    last value seen (and the last such error) is the failure message.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await probe()
        held, failure = _verdict(check, value)
        if held:
            return value
        if loop.time() > deadline:
            raise _gave_up(within, value, failure)
        await asyncio.sleep(interval)


def eventually_blocking(
    probe: Callable[[], T],
    check: Callable[[T], object],
    within: float = 15,
    interval: float = 0.2,
) -> T:
    """`eventually` for code outside an event loop (a subprocess's HTTP endpoint)."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        held, failure = _verdict(check, value)
        if held:
            return value
        if time.monotonic() > deadline:
            raise _gave_up(within, value, failure)
        time.sleep(interval)


def _verdict(check: Callable[[T], object], value: T) -> tuple[bool, AssertionError | None]:
    """Whether `check` holds for `value`; an AssertionError it raises means "not yet"."""
    try:
        return bool(check(value)), None
    except AssertionError as error:
        return False, error


def _gave_up(within: float, value: object, failure: AssertionError | None) -> AssertionError:
    detail = f"; last error: {failure}" if failure is not None else ""
    error = AssertionError(f"condition not met within {within} s; last value: {value!r}{detail}")
    error.__cause__ = failure
    return error


async def background_work_done(app: FastAPI) -> None:
    """Wait until the notifications and payment calls the app has started so far are done.

    The positive signal before asserting that an input had no effect: whatever it set off in
    the background has run to its end, so an effect would be visible now.
    """
    await app.state.notifier.drain()
    payments = getattr(app.state, "payments", None)  # None: card payments are off
    if payments is not None:
        await payments.drain()
        await app.state.notifier.drain()  # payment work may have notified the driver


async def settle(seconds: float = 0.3) -> None:
    """A blind wait, only where nothing observable marks the moment an effect would appear.

    Used before asserting that something did *not* happen (an echo over Redis, a change
    stream that stays quiet); prefer `eventually` or `background_work_done` wherever a
    positive signal exists.
    """
    await asyncio.sleep(seconds)
