"""Sessions in words: live status and the receipt."""

from __future__ import annotations

from backend.lifecycles import AWAITING_START_STATUSES
from backend.models import Billing, ChargingSession, SessionStatus, Station
from backend.services.charging import session_cost
from backend.services.payments import DEMO_PAYMENT_METHOD
from backend.services.pricing import TariffSnapshot
from backend.timezones import STOCKHOLM
from bot.formatting import billed_minutes, duration, kronor, kwh
from bot.i18n import t


def status_text(lang: str, session: ChargingSession, station: Station | None) -> str:
    name = station.name if station else session.charger_id
    if session.status in AWAITING_START_STATUSES:
        return t(lang, "status_starting", station=name)
    if session.status == SessionStatus.STOPPING:
        return t(lang, "status_stopping", station=name)
    cost = session_cost(session)
    power = (session.power_w or 0) / 1000
    power_text = f"{power:.1f} kW"
    return t(
        lang,
        "status",
        station=name,
        energy=kwh(session.energy_wh, lang),
        power=power_text.replace(".", ",") if lang == "sv" else power_text,
        duration=duration(cost.charging_seconds),
        cost=kronor(cost.total_minor, lang),
    )


def receipt_text(
    lang: str, session: ChargingSession, station: Station | None, paid: str | None = None
) -> str:
    """Energy, time, each price component, VAT and the total; then `paid`, how it is paid
    (`payment_lines`)."""
    cost = session_cost(session)
    tariff = TariffSnapshot.from_json(session.tariff_snapshot) if session.tariff_snapshot else None
    when = (session.started_at or session.created_at).astimezone(STOCKHOLM)
    lines = [
        t(
            lang,
            "receipt_header",
            station=station.name if station else session.charger_id,
            date=when.strftime("%Y-%m-%d %H:%M"),
        ),
        t(lang, "receipt_duration", duration=duration(cost.charging_seconds)),
    ]
    if tariff is not None:
        lines.append(
            t(
                lang,
                "receipt_energy",
                energy=kwh(cost.energy_wh, lang),
                price=kronor(tariff.price_per_kwh_minor, lang),
                amount=kronor(cost.energy_minor, lang),
            )
        )
        if tariff.price_per_minute_minor:
            lines.append(
                t(
                    lang,
                    "receipt_time",
                    duration=billed_minutes(cost.charging_seconds),
                    price=kronor(tariff.price_per_minute_minor, lang),
                    amount=kronor(cost.time_minor, lang),
                )
            )
        if tariff.session_fee_minor:
            lines.append(t(lang, "receipt_fee", amount=kronor(cost.session_fee_minor, lang)))
        if cost.reservation_fee_minor:
            lines.append(
                t(lang, "receipt_reservation", amount=kronor(cost.reservation_fee_minor, lang))
            )
        if cost.idle_minor:
            lines.append(
                t(
                    lang,
                    "receipt_idle",
                    minutes=cost.idle_minutes,
                    price=kronor(tariff.idle_fee_per_minute_minor, lang),
                    amount=kronor(cost.idle_minor, lang),
                )
            )
    lines.append(
        t(
            lang,
            "receipt_total",
            total=kronor(cost.total_minor, lang),
            rate=cost.vat_rate_percent,
            vat=kronor(cost.vat_minor, lang),
        )
    )
    if paid:
        lines.append(paid)
    return "\n".join(lines)


def payment_lines(
    lang: str,
    cost_minor: int,
    *,
    billing: str | None,
    held_minor: int = 0,
    captured: bool = False,
    method: str | None = None,
    saved_card: bool = False,
) -> str | None:
    """How a session's cost is paid, for its receipt; None when there is nothing to say.

    A card hold (`held_minor` > 0) pays at most what it holds; the rest is owed and said so.
    Only a `captured` hold is "paid"; one still held is "to be charged" (the capture runs
    alongside the receipt and may be refused). The demo's test payment never says "card".
    """
    test = method == DEMO_PAYMENT_METHOD
    if held_minor > 0:
        if cost_minor <= 0:
            return t(lang, "receipt_nothing_taken_test" if test else "receipt_nothing_taken")
        taken = min(cost_minor, held_minor)
        key = f"receipt_{'paid' if captured else 'charge'}_{'test' if test else 'card'}"
        text = t(lang, key, amount=kronor(taken, lang))
        if cost_minor > taken:
            owed = kronor(cost_minor - taken, lang)
            text += "\n" + t(lang, "receipt_owed", amount=owed, hold=kronor(held_minor, lang))
        return text
    if cost_minor <= 0:
        return None
    if billing == Billing.INVOICE:
        return t(lang, "receipt_invoice", amount=kronor(cost_minor, lang))
    if billing == Billing.CARD_ON_FILE and saved_card:
        return t(lang, "receipt_saved_card", amount=kronor(cost_minor, lang))
    return None
