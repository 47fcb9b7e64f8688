"""status, stop and history: the driver's own sessions."""

from __future__ import annotations

from collections import defaultdict

from sqlmodel import col, select

from backend.lifecycles import AWAITING_START_STATUSES, BILLED_SESSION_STATUSES
from backend.models import ACTIVE_SESSION_STATUSES, Charger, ChargingSession, Connector, Station
from backend.services.errors import ConflictError
from backend.services.invoices import Month, session_day
from backend.services.ports import CommandStatus
from backend.timezones import STOCKHOLM
from bot.context import Context
from bot.flows.sessions_text import status_text
from bot.formatting import kronor, kwh
from bot.messages import Reply


async def active_session(ctx: Context) -> ChargingSession | None:
    return await ctx.db.scalar(
        select(ChargingSession)
        .where(
            col(ChargingSession.driver_id) == ctx.driver.id,
            col(ChargingSession.status).in_(ACTIVE_SESSION_STATUSES),
        )
        .order_by(col(ChargingSession.id).desc())
    )


async def station_of(ctx: Context, session: ChargingSession) -> Station | None:
    charger = await ctx.db.get(Charger, session.charger_id)
    if charger is None or charger.station_id is None:
        return None
    return await ctx.db.get(Station, charger.station_id)


async def connector_code(ctx: Context, session: ChargingSession) -> str | None:
    """The code of the connector the session charges at."""
    code: str | None = await ctx.db.scalar(
        select(col(Connector.code)).where(
            col(Connector.charger_id) == session.charger_id,
            col(Connector.connector_id) == session.connector_id,
        )
    )
    return code


async def status(ctx: Context) -> list[Reply]:
    session = await active_session(ctx)
    if session is None:
        return [ctx.reply(ctx.t("status_none"))]
    ctx.conversation.data = {**ctx.conversation.data, "live_session": session.id}
    text = status_text(ctx.lang, session, await station_of(ctx, session))
    return [ctx.reply(text, live_key=f"status:{session.id}")]


async def stop(ctx: Context) -> list[Reply]:
    session = await active_session(ctx)
    if session is None:
        if ctx.conversation.channel == "sms":  # "STOPP" may have meant "no more texts"
            return [ctx.reply(f"{ctx.t('stop_none')} {ctx.t('sms_optout_hint')}")]
        return [ctx.reply(ctx.t("stop_none"))]
    if session.status in AWAITING_START_STATUSES:
        return [ctx.reply(ctx.t("stop_not_started"))]
    await ctx.db.commit()
    try:
        outcome = await ctx.services.charging.request_stop(
            session_id=session.id, driver_id=ctx.driver.id
        )
    except ConflictError:
        return [ctx.reply(ctx.t("stop_none"))]
    if outcome.result.accepted:
        return [ctx.reply(ctx.t("stopping"))]
    if outcome.result.status is CommandStatus.OFFLINE:
        return [ctx.reply(ctx.t("stop_offline"))]
    return [ctx.reply(ctx.t("stop_failed"))]


async def history(ctx: Context) -> list[Reply]:
    sessions = (
        await ctx.db.scalars(
            select(ChargingSession)
            .where(
                col(ChargingSession.driver_id) == ctx.driver.id,
                # under meter review: billed its plausible amount so far, as on the invoice
                col(ChargingSession.status).in_(BILLED_SESSION_STATUSES),
            )
            # the latest to end first (imported or operator-started sessions may have older ids)
            .order_by(col(ChargingSession.stopped_at).desc(), col(ChargingSession.id).desc())
            .limit(200)
        )
    ).all()
    if not sessions:
        return [ctx.reply(ctx.t("history_none"))]
    lines = [ctx.t("history_header")]
    names: dict[str, str] = {}
    for session in sessions[:5]:
        if session.charger_id not in names:
            station = await station_of(ctx, session)
            names[session.charger_id] = station.name if station else session.charger_id
        lines.append(
            ctx.t(
                "history_line",
                date=session_day(session).isoformat(),
                station=names[session.charger_id],
                energy=kwh(session.energy_wh, ctx.lang, 1),
                cost=kronor(session.cost_minor or 0, ctx.lang),
            )
        )
    # Days and months as on the invoice (`session_day`), so the two always agree.
    totals: dict[Month, list[int]] = defaultdict(lambda: [0, 0, 0])
    for session in sessions:
        month = Month.of(session_day(session))
        totals[month][0] += 1
        totals[month][1] += session.energy_wh
        totals[month][2] += session.cost_minor or 0
    this_month = Month.of(ctx.services.clock().astimezone(STOCKHOLM).date())
    count, energy, cost = totals.get(this_month, [0, 0, 0])
    lines.append("")
    lines.append(
        ctx.t(
            "history_month_one" if count == 1 else "history_month",
            month=str(this_month),
            count=count,
            energy=kwh(energy, ctx.lang, 1),
            cost=kronor(cost, ctx.lang),
        )
    )
    return [ctx.reply("\n".join(lines))]
