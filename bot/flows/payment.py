"""/card: a link to save a card (Stripe Checkout, setup mode) for charging without a hold."""

from __future__ import annotations

from backend.models import Billing
from backend.services.ports import PaymentGatewayError
from backend.services.pricing import MEMBER_PLAN
from bot.context import Context
from bot.formatting import kronor
from bot.messages import Link, Reply


async def card(ctx: Context) -> list[Reply]:
    payments = ctx.services.payments
    if payments is None or ctx.driver.id is None:
        return [ctx.reply(ctx.t("payment_not_ready"))]
    if ctx.driver.billing == Billing.INVOICE:
        return [ctx.reply(ctx.t("card_invoice_account"))]
    await ctx.db.commit()  # the conversation state, before the slow part
    try:
        url = await payments.card_setup_link(ctx.driver.id, channel=ctx.conversation.channel)
    except PaymentGatewayError:
        return [ctx.reply(ctx.t("payment_unavailable"))]
    return [ctx.reply(ctx.t("card_link"), links=[Link(ctx.t("card_button"), url)])]


async def member(ctx: Context) -> list[Reply]:
    """/member: a subscription page for the member plan (lower price per kWh)."""
    payments = ctx.services.payments
    settings = ctx.services.settings
    if (
        payments is None
        or ctx.driver.id is None
        or not settings.member_price_per_kwh_discount_percent
        or not settings.stripe_member_price_id
    ):
        return [ctx.reply(ctx.t("member_not_offered"))]
    if ctx.driver.plan == MEMBER_PLAN:
        return [ctx.reply(ctx.t("member_already"))]
    await ctx.db.commit()  # the conversation state, before the slow part
    try:
        url = await payments.member_link(ctx.driver.id, channel=ctx.conversation.channel)
    except PaymentGatewayError:
        return [ctx.reply(ctx.t("payment_unavailable"))]
    text = ctx.t(
        "member_link",
        fee=kronor(settings.member_monthly_fee_minor, ctx.lang),
        percent=settings.member_price_per_kwh_discount_percent,
    )
    return [ctx.reply(text, links=[Link(ctx.t("member_button"), url)])]
