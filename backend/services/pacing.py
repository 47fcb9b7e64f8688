"""Background work spread over time, so that it never crowds out the answers to chargers.

The upkeep's first contact with a charger (its configuration read, its local list) costs a
few milliseconds of the process's one core. Ten thousand chargers met at once, after a
network is onboarded, would take that core for minutes while their MeterValues wait. A
`Pace` lets such work start at most `per_second` times a second, first come first served.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class Pace:
    """`await turn()` returns no sooner than 1/per_second after the previous turn began."""

    def __init__(
        self,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self._gap = 1.0 / per_second
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self.turns = 0  # turns given so far

    async def turn(self) -> None:
        now = self._clock()
        start = max(now, self._next)
        self._next = start + self._gap  # claimed before sleeping: the next caller queues behind
        self.turns += 1
        if start > now:
            await self._sleep(start - now)
