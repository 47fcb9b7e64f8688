"""Numbers the way drivers read them: kronor, kWh, durations, in Swedish or English style."""

from __future__ import annotations

from datetime import timedelta


def kronor(minor: int, lang: str) -> str:
    """450 → "4,50 kr" (sv) / "4.50 kr" (en)."""
    sign = "-" if minor < 0 else ""
    whole, ore = divmod(abs(minor), 100)
    separator = "," if lang == "sv" else "."
    return f"{sign}{whole}{separator}{ore:02d} kr"


def kwh(wh: int | float, lang: str, decimals: int = 2) -> str:
    text = f"{wh / 1000:.{decimals}f}"
    return (text.replace(".", ",") if lang == "sv" else text) + " kWh"


def kilowatts(kw: float, lang: str) -> str:
    text = f"{kw:.0f}" if kw >= 10 or kw == int(kw) else f"{kw:.1f}"
    return (text.replace(".", ",") if lang == "sv" else text) + " kW"


def km(distance_km: float, lang: str) -> str:
    if distance_km < 1:
        return f"{round(distance_km * 1000, -1):.0f} m"
    text = f"{distance_km:.1f}" if distance_km < 10 else f"{distance_km:.0f}"
    return (text.replace(".", ",") if lang == "sv" else text) + " km"


def duration(value: timedelta | float) -> str:
    """timedelta or seconds → "1 h 05 min" / "12 min"."""
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    hours, rest = divmod(max(0, seconds), 3600)
    minutes = rest // 60
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def billed_minutes(seconds: int) -> str:
    """Whole seconds as billed per minute, exactly: 10 → "0 min 10 s", 3930 → "65 min 30 s".

    Per-minute prices are charged by the second; rounding the minutes here would show a
    product that does not match the amount beside it.
    """
    minutes, rest = divmod(max(0, seconds), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"
