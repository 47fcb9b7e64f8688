"""Simulated OCPP 1.6-J charge point (``ocpp`` library + ``websockets`` client).

Used by the demo, by protocol tests and for load benchmarks: hundreds of instances share one
event loop (no per-charger threads, no polling); an idle charger only sends Heartbeats.

- `config`: `SimulatorConfig`, the OCPP configuration keys and protocol timings
- `charge_point`: `SimulatedChargePoint` (connect, boot, statuses, transactions, metering)
- `session`: one WebSocket connection, answering the central system's CALLs
- `tx_queue`: transaction messages, in order and retried (OCPP 1.6 §4.x)
- `connector`: a connector's state and its meter
- `battery`: the car's charging curve
- `runner`: many simulators in one loop (the demo), or one until Ctrl-C (`chargebot simulate`)
"""

from backend.chargers.simulator.charge_point import SimulatedChargePoint
from backend.chargers.simulator.config import SimulatorConfig
from backend.chargers.simulator.runner import run_simulators, simulate_forever

__all__ = [
    "SimulatedChargePoint",
    "SimulatorConfig",
    "run_simulators",
    "simulate_forever",
]
