"""Running simulators: many in one event loop (the demo), or one until Ctrl-C.

`chargebot simulate` (backend/cli.py parses its arguments) runs `simulate_forever`.
"""

from __future__ import annotations

import asyncio

from backend.chargers.simulator.charge_point import LOG, SimulatedChargePoint
from backend.chargers.simulator.config import SimulatorConfig


async def run_simulators(configs: list[SimulatorConfig]) -> None:
    """Run many simulated charge points in this event loop until cancelled."""
    sims = [SimulatedChargePoint(cfg) for cfg in configs]
    async with asyncio.TaskGroup() as group:
        for sim in sims:
            group.create_task(sim.run(), name=f"sim:{sim._id}")


async def simulate_forever(config: SimulatorConfig) -> None:
    """Run one simulated charge point until cancelled (Ctrl-C)."""
    sim = SimulatedChargePoint(config)
    LOG.info("simulating %s against %s", config.charge_point_id, config.url)
    await sim.run()
