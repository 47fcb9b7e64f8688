"""start: from a QR deep link or a typed code, show the full price, confirm, RemoteStart."""

from __future__ import annotations

from sqlmodel import col, select

from backend.db import utcnow
from backend.models import (
    Billing,
    Charger,
    Connector,
    Station,
    Tariff,
)
from backend.services import access, network
from backend.services.errors import NotFoundError, RefusedError
from backend.services.payments import (
    CHECKOUT_LIFETIME,
    PaymentService,
    PaymentUnavailableError,
)
from backend.services.ports import CommandStatus
from bot.context import Context
from bot.flows.find import type_label
from bot.flows.pricing_text import full_price
from bot.formatting import kilowatts, kronor
from bot.i18n import CATALOGS
from bot.messages import Choice, Link, Reply

# Refusals where waiting in the station's queue helps (bot/flows/reserve.py).
QUEUE_REASONS = frozenset({"busy", "occupied", "reserved"})
OUTCOME_TEXT = {
    CommandStatus.REJECTED: "start_rejected",
    CommandStatus.OFFLINE: "start_offline",
    CommandStatus.TIMED_OUT: "start_timed_out",
}


async def _place(
    ctx: Context, code: str
) -> tuple[Connector, Charger, Station | None, Tariff | None] | None:
    try:
        connector = await network.get_connector_by_code(ctx.db, code)
    except NotFoundError:
        return None
    charger = await ctx.db.get(Charger, connector.charger_id)
    assert charger is not None
    station = await ctx.db.get(Station, charger.station_id) if charger.station_id else None
    tariff = None
    if station is not None:
        tariff = await ctx.db.scalar(select(Tariff).where(col(Tariff.station_id) == station.id))
    return connector, charger, station, tariff


async def refusal(ctx: Context, reason: str, station: Station | None, code: str = "") -> str:
    """The reason a start cannot happen, in the driver's words."""
    if reason in {"members_only", "closed"} and station is not None and station.id:
        decision = await access.check_access(ctx.db, station.id, ctx.driver.id, utcnow())
        return ctx.t(
            f"refused_{reason}", groups=", ".join(decision.groups), hours=decision.hours or ""
        )
    key = f"refused_{reason}"
    return ctx.t(key, code=code) if key in CATALOGS[ctx.lang] else ctx.t("refused_other")


async def _precheck(ctx: Context, connector: Connector, charger: Charger) -> str | None:
    """The first reason this driver cannot start here now (the service's own rules), or None."""
    refused = await ctx.services.charging.preflight(
        charger.id, connector.connector_id, driver_id=ctx.driver.id
    )
    return refused.reason if refused is not None else None


async def show(ctx: Context, code: str) -> list[Reply]:
    """Everything about the connector and its price, before anything happens."""
    found = await _place(ctx, code)
    if found is None:
        return [ctx.reply(ctx.t("unknown_code", code=code.strip().upper()))]
    connector, charger, station, tariff = found
    info = ctx.t(
        "connector_info",
        station=station.name if station else charger.id,
        address=station.address if station else "",
        city=station.city if station else "",
        code=connector.code,
        type=type_label(ctx, connector.connector_type),
        kw=kilowatts(connector.max_power_kw, ctx.lang),
    )
    text = f"{info}\n\n{full_price(ctx, tariff)}"
    reason = await _precheck(ctx, connector, charger)
    # Bare RESERVERA / KÖ right after mean this connector.
    ctx.conversation.data = {**ctx.conversation.data, "start_code": connector.code}
    reservable = tariff is not None and tariff.reservation_minutes > 0
    if reason is not None:
        ctx.conversation.state = None
        said = await refusal(ctx, reason, station, code=connector.code)
        if reason in QUEUE_REASONS and ctx.services.chat_reservations is not None:
            if reason != "reserved":
                said += "\n" + ctx.t("queue_offer", code=connector.code)
            choice = ctx.choice("queue_button", f"queue:{connector.code}")
            return [ctx.reply(f"{text}\n\n{said}", [choice])]
        return [ctx.reply(f"{text}\n\n{said}")]
    offer_start(ctx, connector.code)
    choices = [
        ctx.choice("confirm_button", f"start:{connector.code}"),
        ctx.choice("cancel_button", "cancel"),
    ]
    question = ctx.t("confirm_question")
    if reservable and tariff is not None and ctx.services.chat_reservations is not None:
        fee = (
            ctx.t("reserve_fee", fee=kronor(tariff.reservation_fee_minor, ctx.lang))
            if tariff.reservation_fee_minor
            else ""
        )
        minutes = tariff.reservation_minutes
        question = f"{ctx.t('reserve_terms', minutes=minutes, fee=fee)}\n{question}"
        label = ctx.t("reserve_button", minutes=minutes)
        choices.insert(1, Choice(label, f"reserve:{connector.code}"))
    return [ctx.reply(f"{text}\n\n{question}", choices)]


def offer_start(ctx: Context, code: str) -> None:
    """The next "start" button (or "ja") starts connector `code`: the state `confirm` checks."""
    ctx.conversation.state = "start:confirm"
    ctx.conversation.data = {**ctx.conversation.data, "start_code": code}


async def confirm(ctx: Context, code: str) -> list[Reply]:
    ctx.conversation.state = None
    if ctx.conversation.data.get("start_code") != code:
        return [ctx.reply(ctx.t("stale_choice"))]
    ctx.conversation.data = {k: v for k, v in ctx.conversation.data.items() if k != "start_code"}
    found = await _place(ctx, code)
    if found is None:
        return [ctx.reply(ctx.t("unknown_code", code=code))]
    connector, charger, station, _ = found
    reason = await _precheck(ctx, connector, charger)
    if reason is not None:
        return [ctx.reply(await refusal(ctx, reason, station, code=connector.code))]
    if ctx.conversation.channel == "sms":
        # No payment page on a plain phone: only accounts billed another way start by SMS
        # (a saved card is charged off-session after the charge; see Payments).
        if ctx.driver.billing not in {Billing.INVOICE, Billing.CARD_ON_FILE}:
            return [ctx.reply(ctx.t("sms_no_account"))]
        if _card_missing(ctx):
            return [ctx.reply(ctx.t("card_missing"))]
    elif ctx.driver.billing == Billing.PAY_PER_SESSION and ctx.services.payments is not None:
        return await _pay_then_start(ctx, connector, charger, station)
    elif ctx.driver.billing == Billing.PAY_PER_SESSION and ctx.services.demo_payments is not None:
        return await _pay_then_start(ctx, connector, charger, station, test=True)
    elif ctx.driver.billing == Billing.CARD_ON_FILE and ctx.services.payments is not None:
        if _card_missing(ctx):
            return [ctx.reply(ctx.t("card_missing"))]
        # A saved card: started at once, charged off-session for the exact cost afterwards.
    elif ctx.driver.billing != Billing.INVOICE:
        # No card payments configured: nobody starts without a way to pay.
        return [ctx.reply(ctx.t("payment_not_ready"))]
    await ctx.db.commit()  # the conversation state, before the slow part
    try:
        outcome = await ctx.services.charging.start_remote(
            charger.id,
            connector.connector_id,
            driver_id=ctx.driver.id,
            channel=ctx.conversation.channel,
        )
    except RefusedError as refused:
        return [ctx.reply(await refusal(ctx, refused.reason, station, code=connector.code))]
    if outcome.result.accepted:
        return [ctx.reply(ctx.t("starting"))]
    return [ctx.reply(ctx.t(OUTCOME_TEXT[outcome.result.status]))]


def _card_missing(ctx: Context) -> bool:
    """A card_on_file driver without a saved card, while card payments are on."""
    return (
        ctx.services.payments is not None
        and ctx.driver.billing == Billing.CARD_ON_FILE
        and ctx.driver.stripe_payment_method_id is None
    )


async def _pay_then_start(
    ctx: Context,
    connector: Connector,
    charger: Charger,
    station: Station | None,
    *,
    test: bool = False,
) -> list[Reply]:
    """Hold the connector and send the payment page; the charger starts once Stripe holds."""
    payments: PaymentService | None = ctx.services.demo_payments if test else ctx.services.payments
    assert payments is not None and ctx.driver.id is not None
    await ctx.db.commit()  # the conversation state, before the slow part
    try:
        _, url = await payments.checkout(
            charger.id,
            connector.connector_id,
            driver_id=ctx.driver.id,
            channel=ctx.conversation.channel,
        )
    except RefusedError as refused:
        return [ctx.reply(await refusal(ctx, refused.reason, station, code=connector.code))]
    except PaymentUnavailableError:
        return [ctx.reply(ctx.t("payment_unavailable"))]
    text = ctx.t(
        "pay_to_start",
        amount=kronor(payments.hold_amount_minor, ctx.lang),
        minutes=int(CHECKOUT_LIFETIME.total_seconds() // 60),
    )
    if test:
        text = f"{ctx.t('test_payment_note')}\n{text}"
    return [ctx.reply(text, links=[Link(ctx.t("pay_button"), url)])]


async def cancel(ctx: Context) -> list[Reply]:
    ctx.conversation.state = None
    ctx.conversation.data = {k: v for k, v in ctx.conversation.data.items() if k != "start_code"}
    return [ctx.reply(ctx.t("cancelled"))]
