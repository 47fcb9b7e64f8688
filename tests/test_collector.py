"""The garbage-collection policy of a process with thousands of sockets (backend/collector.py).

What survives a full collection is frozen out of the next ones; cyclic garbage among frozen
objects is still reclaimed by the periodic thawed pass; stopping leaves nothing frozen.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator

import pytest

from backend.collector import CollectorPolicy


class Node:
    """An object in a reference cycle: only the collector (not refcounting) frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
async def policy() -> AsyncIterator[CollectorPolicy]:
    collector = CollectorPolicy(full_every=3600)
    collector.start()
    try:
        yield collector
    finally:
        await collector.stop()


async def test_what_survives_a_full_collection_is_frozen(policy: CollectorPolicy) -> None:
    assert gc.get_freeze_count() > 0  # the started process's objects
    kept = [Node() for _ in range(1000)]
    before = gc.get_freeze_count()
    gc.collect()  # as a full pass the interpreter starts itself would
    assert gc.get_freeze_count() >= before + len(kept)
    # The next full pass scans nothing of them: the oldest generation holds none.
    assert len(gc.get_objects(generation=2)) < len(kept)


async def test_a_frozen_cycle_turned_garbage_is_freed_by_the_thawed_pass(
    policy: CollectorPolicy,
) -> None:
    node = Node()
    gone = weakref.ref(node)
    gc.collect()  # `node` survives and is frozen
    del node
    gc.collect()  # frozen: a plain full pass does not look at it
    assert gone() is not None
    assert policy.thawed_pass() > 0
    assert gone() is None
    assert gc.get_freeze_count() > 0  # the survivors are frozen again


async def test_the_thawed_pass_runs_on_its_timer() -> None:
    collector = CollectorPolicy(full_every=0.05)
    collector.start()
    try:
        node = Node()
        gone = weakref.ref(node)
        gc.collect()
        del node
        for _ in range(100):
            if gone() is None:
                break
            await asyncio.sleep(0.02)
        assert gone() is None
    finally:
        await collector.stop()


async def test_stopping_leaves_nothing_frozen() -> None:
    collector = CollectorPolicy(full_every=3600)
    collector.start()
    await collector.stop()
    assert gc.get_freeze_count() == 0
    assert collector._after_collection not in gc.callbacks
    kept = Node()
    gc.collect()
    assert gc.get_freeze_count() == 0
    del kept
