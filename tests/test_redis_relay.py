"""The Redis relay in one test process: typed outcomes of remote commands, event fan-out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.chargers.redis_relay import RedisNetwork, decode_event, encode_event
from backend.chargers.registry import ChargerRegistry
from backend.chargers.relay import LocalChargerCommands
from backend.db import session_factory
from backend.services.events import DomainEvent, EventBus, SessionCompleted, SessionStarted
from backend.services.ports import CommandStatus
from tests.helpers.waiting import eventually, settle


@pytest.fixture
async def networks(
    engine: AsyncEngine, redis_url: str, redis_prefix: str
) -> AsyncIterator[tuple[RedisNetwork, RedisNetwork]]:
    sessions = session_factory(engine)
    made = []
    for _ in range(2):
        registry = ChargerRegistry()
        network = RedisNetwork(
            redis_url,
            prefix=redis_prefix,
            registry=registry,
            local=LocalChargerCommands(registry, timeout=0.5),
            sessions=sessions,
            events=EventBus(),
            call_timeout=0.5,
            lease_seconds=3,
        )
        await network.start()
        made.append(network)
    yield made[0], made[1]
    for network in made:
        await network.stop()


async def test_nobody_holds_it_is_offline(networks: tuple[RedisNetwork, RedisNetwork]) -> None:
    first, _ = networks
    result = await first.commands.unlock("CP-NOWHERE", 1)
    assert result.status is CommandStatus.OFFLINE


async def test_a_holder_that_died_before_its_lease_lapsed_is_offline(
    networks: tuple[RedisNetwork, RedisNetwork],
) -> None:
    first, _ = networks
    await first.redis.set(first.holder_key("CP-ORPHAN"), "a-dead-process", px=3000)
    result = await first.commands.reset("CP-ORPHAN", "Soft")
    assert result.status is CommandStatus.OFFLINE
    assert "gone" in (result.detail or "")


async def test_a_holder_that_does_not_answer_times_out(
    networks: tuple[RedisNetwork, RedisNetwork], redis_url: str
) -> None:
    first, _ = networks
    mute = aioredis.from_url(redis_url)
    pubsub = mute.pubsub()
    await pubsub.subscribe(first.channel("a-mute-process"))  # listens, never answers
    try:
        await first.redis.set(first.holder_key("CP-MUTE"), "a-mute-process", px=3000)
        result = await first.commands.unlock("CP-MUTE", 1)
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        await mute.aclose()
    assert result.status is CommandStatus.TIMED_OUT


async def test_the_holder_answers_for_its_registry(
    networks: tuple[RedisNetwork, RedisNetwork],
) -> None:
    """B holds the lease but the socket just went: B's own answer (offline) comes back."""
    first, second = networks
    await second.acquire("CP-BRIEF", "c1")
    assert await first.holder("CP-BRIEF") == second.process_id
    result = await first.commands.trigger_message("CP-BRIEF", "StatusNotification")
    assert result.status is CommandStatus.OFFLINE
    assert result.detail == "charger CP-BRIEF is offline"
    assert not await second.release("CP-BRIEF", "c0")  # another connection's lease stays
    assert await second.release("CP-BRIEF", "c1")
    assert await first.holder("CP-BRIEF") is None


async def test_events_reach_every_process_once_and_the_notifier_only_where_they_happened(
    networks: tuple[RedisNetwork, RedisNetwork],
) -> None:
    first, second = networks
    seen: dict[str, list[DomainEvent]] = {
        "first live": [],
        "first notifier": [],
        "second live": [],
        "second notifier": [],
    }

    def keeper(name: str):  # type: ignore[no-untyped-def]
        async def keep(event: DomainEvent) -> None:
            seen[name].append(event)

        return keep

    first.events.subscribe(keeper("first live"))
    first.events.subscribe(keeper("first notifier"), local_only=True)
    second.events.subscribe(keeper("second live"))
    second.events.subscribe(keeper("second notifier"), local_only=True)
    started = SessionStarted(session_id=7, driver_id=3, channel="sms")
    await first.events.publish(started)
    await eventually(lambda: asyncio.sleep(0, seen["second live"]), bool, within=2)
    await settle(0.2)  # no signal marks "no echo": one back to the first would arrive by now
    assert seen == {
        "first live": [started],
        "first notifier": [started],
        "second live": [started],
        "second notifier": [],
    }


def test_events_survive_the_wire() -> None:
    event = SessionCompleted(
        session_id=1, driver_id=None, channel=None, cost_minor=1250, energy_wh=9
    )
    assert decode_event(encode_event(event, "p")) == ("p", event)
