"""The demo network loads on every backend, with reproducible codes."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from backend.services.codes import CODE_PATTERN
from backend.services.seed import load_network, seed_demo_network


async def test_the_demo_network_seeds_with_unique_reproducible_codes(db: AsyncSession) -> None:
    seeded = await seed_demo_network(db)
    entries = load_network()
    assert len(seeded) == sum(len(ch["connectors"]) for s in entries for ch in s["chargers"])
    codes = [c.code for c in seeded]
    assert len(set(codes)) == len(codes)
    assert all(CODE_PATTERN.match(code) for code in codes)
    # The same seed gives the same first code (the printed demo codes stay stable).
    import random

    from backend.services import codes as code_module

    rng = random.Random(2026)
    assert codes[0] == code_module.new_code(set(), rng.choice)
