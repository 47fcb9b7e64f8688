"""Background work is spread over time: the upkeep's first contact with thousands of new
chargers (configuration read, local list) must not crowd out their answers."""

from __future__ import annotations

import functools

import httpx
import pytest

from backend.app import create_app
from backend.services.pacing import Pace
from backend.settings import Settings
from tests.helpers.charging import priced_charger, simulator
from tests.helpers.server import LiveServer, served
from tests.helpers.waiting import eventually


class FakeTime:
    """A clock that moves only when told to, and a sleep that records and moves it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


async def test_turns_are_spaced_by_the_rate_and_the_first_is_at_once() -> None:
    time = FakeTime()
    pace = Pace(4.0, clock=time.clock, sleep=time.sleep)
    for _ in range(3):
        await pace.turn()
    assert time.slept == [0.25, 0.25]  # the first turn waited for nothing
    assert time.now == pytest.approx(100.5)
    assert pace.turns == 3


async def test_a_pace_left_idle_does_not_save_up_turns_for_a_burst() -> None:
    time = FakeTime()
    pace = Pace(2.0, clock=time.clock, sleep=time.sleep)
    await pace.turn()
    time.now += 60.0  # a quiet minute
    await pace.turn()
    await pace.turn()
    assert time.slept == [0.5]  # after the pause one turn is free, the next is spaced again


def test_a_pace_needs_a_positive_rate() -> None:
    with pytest.raises(ValueError):
        Pace(0)


async def test_the_upkeep_takes_a_turn_per_charger_it_reads_and_syncs(
    live_settings: Settings,
) -> None:
    settings = live_settings.model_copy(
        update={"charger_sync_seconds": 0.2, "charger_upkeep_per_second": 50.0}
    )
    async with served(create_app(settings)) as live:
        chargers = [await priced_charger(live.http) for _ in range(2)]
        async with simulator(live, chargers[0]["id"]), simulator(live, chargers[1]["id"]):
            for charger in chargers:
                await eventually(
                    functools.partial(_configuration, live, charger["id"]),
                    lambda r: r.json()["reported_at"] is not None,
                )
            # Two configuration reads, then each charger's local list (a turn even when the
            # list turns out to be up to date).
            await eventually(lambda: _turns(live.app.state.upkeep_pace), lambda turns: turns >= 4)


async def _turns(pace: Pace) -> int:
    return pace.turns


async def _configuration(live: LiveServer, charger_id: str) -> httpx.Response:
    return await live.http.get(f"/admin/chargers/{charger_id}/configuration")
