"""The car behind a connector: how fast its battery takes energy at a given state of charge.

Constant power up to 80 %, then a linear taper to a tenth of the rated power just before 100 %.
"""

from __future__ import annotations

import math

TAPER_SOC = 0.8  # constant power below this state of charge
END_POWER_FRACTION = 0.1  # fraction of the rated power just before 100 %


def power_fraction(soc: float) -> float:
    """Share of the rated power the car draws at this state of charge (0..1)."""
    if soc >= 1.0:
        return 0.0
    if soc < TAPER_SOC:
        return 1.0
    return 1.0 - (1.0 - END_POWER_FRACTION) * (soc - TAPER_SOC) / (1.0 - TAPER_SOC)


def charge(soc: float, hours: float, power_kw: float, battery_kwh: float) -> float:
    """State of charge after charging for `hours` along the constant-power/linear-taper curve."""
    if hours <= 0.0 or power_kw <= 0.0 or battery_kwh <= 0.0 or soc >= 1.0:
        return soc
    if soc < TAPER_SOC:
        constant_hours = (TAPER_SOC - soc) * battery_kwh / power_kw
        if hours <= constant_hours:
            return soc + power_kw * hours / battery_kwh
        hours -= constant_hours
        soc = TAPER_SOC
    # Taper: P(x) = P0 * (a - b*x), so dx/dt = (P0/B) * (a - b*x) decays exponentially
    # towards x_inf = a/b (> 1); it crosses 100 % after a finite time.
    b = (1.0 - END_POWER_FRACTION) / (1.0 - TAPER_SOC)
    x_inf = (1.0 + b * TAPER_SOC) / b
    k = b * power_kw / battery_kwh
    hours_to_full = math.log((x_inf - soc) / (x_inf - 1.0)) / k
    if hours >= hours_to_full:
        return 1.0
    return x_inf - (x_inf - soc) * math.exp(-k * hours)
