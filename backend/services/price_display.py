"""Prices on the charger's display: the Open Charge Alliance's California Pricing messages
(OCPP 1.6 DataTransfer, vendorId `org.openchargealliance.costmsg`).

For a charger that reports `CustomDisplayCostAndPrice` true (read with GetConfiguration), the
driver's price is sent when the session starts (`SetUserPrice`), the running cost while it
charges (`RunningCost`, at most every RUNNING_EVERY seconds per session) and the final cost
once it is priced (`FinalCost`): all from the session's tariff snapshot, the one billing uses.
Texts are in the driver's language, the other one as `priceTextExtra`. Sent from tasks of
their own, so a slow charger never holds up the events that trigger them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db import utcnow
from backend.lifecycles import LIVE_SESSION_STATUSES
from backend.models import ChargerConfigurationKey, ChargingSession, Driver
from backend.services.charging import session_cost
from backend.services.events import (
    DomainEvent,
    SessionCompleted,
    SessionFailed,
    SessionProgress,
    SessionStarted,
)
from backend.services.ports import ChargerCommands
from backend.services.pricing import FREE, TariffSnapshot

log = logging.getLogger(__name__)

VENDOR_ID = "org.openchargealliance.costmsg"
SUPPORT_KEY = "CustomDisplayCostAndPrice"
RUNNING_EVERY = 60.0  # seconds between RunningCost messages of one session
# How long a charger's answer to "do you show prices?" is trusted before it is read again
# (an operator's GetConfiguration or ChangeConfiguration may change it).
SUPPORT_TTL = 300.0
MAX_IN_FLIGHT = 200  # display messages being sent at once; more are dropped (and logged)
LANGUAGES = ("sv", "en")


def _money(minor: int) -> float:
    return round(minor / 100, 2)


def _kr(minor: int, lang: str) -> str:
    whole, ore = divmod(minor, 100)
    return f"{whole}{',' if lang == 'sv' else '.'}{ore:02d} kr"


def price_text(tariff: TariffSnapshot, lang: str) -> str:
    """The tariff in one line, VAT included: "4,50 kr/kWh, startavgift 5,00 kr"."""
    words = {
        "sv": ("startavgift", "tomgång", "efter", "inkl. moms", "gratis"),
        "en": ("start fee", "idle", "after", "incl. VAT", "free"),
    }[lang]
    fee, idle, after, vat, free = words
    parts = []
    if tariff.price_per_kwh_minor:
        parts.append(f"{_kr(tariff.price_per_kwh_minor, lang)}/kWh")
    if tariff.price_per_minute_minor:
        parts.append(f"{_kr(tariff.price_per_minute_minor, lang)}/min")
    if tariff.session_fee_minor:
        parts.append(f"{fee} {_kr(tariff.session_fee_minor, lang)}")
    if tariff.idle_fee_per_minute_minor:
        parts.append(
            f"{idle} {_kr(tariff.idle_fee_per_minute_minor, lang)}/min "
            f"{after} {tariff.idle_grace_minutes} min"
        )
    return (", ".join(parts) + f" ({vat})") if parts else free


def final_text(cost_minor: int, energy_wh: int, lang: str) -> str:
    energy = f"{energy_wh / 1000:.2f}".replace(".", "," if lang == "sv" else ".")
    total = {"sv": "Totalt", "en": "Total"}[lang]
    return f"{total} {_kr(cost_minor, lang)}, {energy} kWh"


def _texts(text: dict[str, str], lang: str) -> tuple[str, list[dict[str, str]]]:
    other = [code for code in LANGUAGES if code != lang]
    extra = [{"format": "UTF8", "language": code, "content": text[code]} for code in other]
    return text[lang], extra


class PriceDisplay:
    """An event subscriber sending California Pricing messages to chargers that show them."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        commands: ChargerCommands,
        running_every: float = RUNNING_EVERY,
        support_ttl: float = SUPPORT_TTL,
    ) -> None:
        self._sessions = sessions
        self._commands = commands
        self.running_every = running_every
        self.support_ttl = support_ttl
        self._last_running: dict[int, float] = {}
        # Per live session its charger; per charger whether it shows prices, and when read.
        # Most chargers do not: their MeterValues then cost no query here.
        self._charger_of: dict[int, str] = {}
        self._shows: dict[str, tuple[bool, float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, event: DomainEvent) -> None:
        if isinstance(event, SessionStarted):
            self._spawn(self._set_user_price(event.session_id))
        elif isinstance(event, SessionProgress):
            now = time.monotonic()
            last = self._last_running.get(event.session_id)
            if last is None or now - last >= self.running_every:
                self._last_running[event.session_id] = now
                if self._known_not_to_show(event.session_id, now):
                    return
                self._spawn(self._running_cost(event.session_id))
        elif isinstance(event, (SessionCompleted, SessionFailed)):
            self._last_running.pop(event.session_id, None)
            self._charger_of.pop(event.session_id, None)
            if isinstance(event, SessionCompleted):
                self._spawn(self._final_cost(event.session_id))

    def _known_not_to_show(self, session_id: int, now: float) -> bool:
        charger_id = self._charger_of.get(session_id)
        if charger_id is None:
            return False
        shows, read_at = self._shows.get(charger_id, (True, 0.0))
        return not shows and now - read_at < self.support_ttl

    def _spawn(self, work: Any) -> None:
        if len(self._tasks) >= MAX_IN_FLIGHT:
            work.close()
            log.warning("price display: %s messages in flight, one dropped", MAX_IN_FLIGHT)
            return
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Let the messages being sent finish (shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=10)

    async def _context(self, session_id: int) -> tuple[ChargingSession, TariffSnapshot, str] | None:
        """The session, its tariff and its driver's language, if its charger shows prices."""
        async with self._sessions() as db:
            session = await db.get(ChargingSession, session_id)
            if session is None:
                return None
            key = await db.get(ChargerConfigurationKey, (session.charger_id, SUPPORT_KEY))
            shows = key is not None and (key.value or "").strip().lower() == "true"
            self._shows[session.charger_id] = (shows, time.monotonic())
            if session.status in LIVE_SESSION_STATUSES:
                self._charger_of[session.id or session_id] = session.charger_id
            if not shows:
                return None
            driver = await db.get(Driver, session.driver_id) if session.driver_id else None
        tariff = (
            TariffSnapshot.from_json(session.tariff_snapshot) if session.tariff_snapshot else FREE
        )
        lang = driver.language if driver is not None and driver.language in LANGUAGES else "sv"
        return session, tariff, lang

    async def _send(self, charger_id: str, message_id: str, data: dict[str, Any]) -> None:
        result = await self._commands.operate(
            charger_id,
            "DataTransfer",
            {"vendor_id": VENDOR_ID, "message_id": message_id, "data": json.dumps(data)},
        )
        if result.ocpp_status != "Accepted":
            log.info("%s: %s not shown: %s", charger_id, message_id, result.ocpp_status)

    async def _set_user_price(self, session_id: int) -> None:
        found = await self._context(session_id)
        if found is None:
            return
        session, tariff, lang = found
        text, extra = _texts({code: price_text(tariff, code) for code in LANGUAGES}, lang)
        data = {"idToken": session.id_tag, "priceText": text, "priceTextExtra": extra}
        await self._send(session.charger_id, "SetUserPrice", data)

    async def _running_cost(self, session_id: int) -> None:
        found = await self._context(session_id)
        if found is None or found[0].transaction_id is None:
            return
        session, tariff, _ = found
        cost = session_cost(session)
        data = {
            "transactionId": session.transaction_id,
            "timestamp": utcnow().isoformat().replace("+00:00", "Z"),
            "meterValue": (session.meter_start_wh or 0) + session.energy_wh,
            "cost": _money(cost.total_minor),
            "state": "Idle" if session.charging_finished_at else "Charging",
            "chargingPrice": {
                "kWhPrice": _money(tariff.price_per_kwh_minor),
                "hourPrice": _money(tariff.price_per_minute_minor * 60),
                "flatFee": _money(tariff.session_fee_minor),
            },
            "idlePrice": {
                "graceMinutes": tariff.idle_grace_minutes,
                "hourPrice": _money(tariff.idle_fee_per_minute_minor * 60),
            },
        }
        await self._send(session.charger_id, "RunningCost", data)

    async def _final_cost(self, session_id: int) -> None:
        found = await self._context(session_id)
        if found is None or found[0].transaction_id is None or found[0].cost_minor is None:
            return
        session, _, lang = found
        assert session.cost_minor is not None
        texts = {
            code: final_text(session.cost_minor, session.energy_wh, code) for code in LANGUAGES
        }
        text, extra = _texts(texts, lang)
        data = {
            "transactionId": session.transaction_id,
            "cost": _money(session.cost_minor),
            "priceText": text,
            "priceTextExtra": extra,
        }
        await self._send(session.charger_id, "FinalCost", data)
