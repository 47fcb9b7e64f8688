"""The FastAPI application: admin API, health check and (later) OCPP, chat and webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import update

from backend import console, migrate
from backend.api import admin, auth, support
from backend.api import demo_payments as demo_payments_api
from backend.api import docs as api_docs
from backend.api import payments as payments_api
from backend.api import uploads as uploads_api
from backend.api.ftp_uploads import ftp_base, start_ftp_uploads, stop_ftp_uploads
from backend.chargers import central
from backend.chargers.redis_relay import RedisNetwork
from backend.chargers.registry import ChargerRegistry
from backend.chargers.relay import LocalChargerCommands
from backend.collector import CollectorPolicy
from backend.db import create_engine, session_factory, sqlite_file, utcnow
from backend.logs import protect_logs
from backend.loop_watch import LoopWatch
from backend.models import Charger
from backend.paths import DATA_DIR
from backend.payments.demo_gateway import DemoGateway
from backend.payments.stripe_gateway import StripeGateway
from backend.services import charger_keys, readiness
from backend.services.certificates import CertificateAuthority, ChargerCertificates
from backend.services.charger_configuration import FirstRead
from backend.services.charger_jobs import ChargerJobs
from backend.services.charger_state import ChargerStateService
from backend.services.charging import ChargingService
from backend.services.charging_queue import ChatReservations
from backend.services.errors import (
    AccessDeniedError,
    CommandFailedError,
    ConflictError,
    InvalidFieldError,
    NotFoundError,
    RefusedError,
)
from backend.services.events import EventBus
from backend.services.hold_guard import HoldGuard
from backend.services.local_list import LocalListSync
from backend.services.login_throttle import LoginThrottle, RedisCounters
from backend.services.pacing import Pace
from backend.services.payments import PaymentService
from backend.services.places import Gazetteer
from backend.services.plausibility import PlausibilityRules
from backend.services.ports import ChargerCommands, FaqCatalogue, OutboundMessages
from backend.services.price_display import PriceDisplay
from backend.services.reservations import ReservationService
from backend.services.smart_charging import SmartCharging
from backend.settings import Settings, get_settings
from bot.adapters.sms import router as sms_router
from bot.adapters.sms import start_sms, stop_sms
from bot.adapters.telegram import router as telegram_router
from bot.adapters.telegram import start_telegram, stop_telegram
from bot.context import BotServices
from bot.engine import Engine
from bot.faq.catalogue import ServiceCatalogue
from bot.faq.matcher import FaqService
from bot.notifier import Notifier
from bot.outbound import OutboxMessages
from bot.outbox import Outbox

log = logging.getLogger(__name__)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(ConflictError)
    async def _conflict(_: Request, exc: ConflictError) -> JSONResponse:
        content: dict[str, str] = {"detail": str(exc)}
        if isinstance(exc, RefusedError):
            content["reason"] = exc.reason
        return JSONResponse(status_code=409, content=content)

    @app.exception_handler(AccessDeniedError)
    async def _denied(_: Request, exc: AccessDeniedError) -> JSONResponse:
        return JSONResponse(status_code=403, content={"detail": str(exc), "reason": exc.reason})

    @app.exception_handler(CommandFailedError)
    async def _command_failed(_: Request, exc: CommandFailedError) -> JSONResponse:
        status = 504 if exc.outcome == "timed_out" else 409
        return JSONResponse(status_code=status, content={"detail": str(exc), "reason": exc.outcome})

    @app.exception_handler(InvalidFieldError)
    async def _invalid(_: Request, exc: InvalidFieldError) -> JSONResponse:
        error = {"loc": ["body", exc.field], "msg": str(exc), "type": "value_error"}
        return JSONResponse(status_code=422, content={"detail": [error]})


async def _run_timers(
    charging: ChargingService,
    interval: float,
    hold_guard: HoldGuard | None = None,
    reservations: ReservationService | None = None,
    queues: ChatReservations | None = None,
) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await charging.run_timers()
        except Exception:
            log.exception("charging timers failed; retrying in %s s", interval)
        if reservations is not None:
            try:
                await reservations.sweep()
            except Exception:
                log.exception("reservation expiry failed; retrying in %s s", interval)
        if queues is not None:
            try:  # after the expiry: a lapsed offer frees its connector for the next in line
                await queues.tick()
            except Exception:
                log.exception("station queues failed; retrying in %s s", interval)
        if hold_guard is not None:
            try:  # per-minute and idle fees grow between meter values too
                await hold_guard.tick()
            except Exception:
                log.exception("hold cap check failed; retrying in %s s", interval)


async def _run_upkeep(
    first_read: FirstRead,
    local_lists: LocalListSync,
    smart: SmartCharging,
    registry: ChargerRegistry,
    interval: float,
    pace: Pace,
) -> None:
    """Every `interval` s, the chargers this process holds are read once (the configuration
    keys other features need), get what their local list lacks and their station's power
    limit if they missed it. Reads and list syncs start one per turn of `pace`."""
    while True:
        await asyncio.sleep(interval)
        booted = [
            charger_id
            for charger_id in registry.ids()
            if (connection := registry.get(charger_id)) is not None
            and connection.boot_answer == "Accepted"
        ]
        try:
            await first_read.read_unknown(booted, pace=pace)
        except Exception:
            log.exception("configuration read failed; retrying in %s s", interval)
        try:
            await local_lists.sync_behind(booted, pace=pace)
        except Exception:
            log.exception("local list sync failed; retrying in %s s", interval)
        try:
            await smart.sync_station_limits(booted)
        except Exception:
            log.exception("station limit sync failed; retrying in %s s", interval)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    protect_logs(settings)  # no URL with a bot token, no secret in any log record

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.check_secrets()
        engine = create_engine(settings.database_url)
        if sqlite_file(settings.database_url) is not None:
            # The embedded default keeps itself current; PostgreSQL uses the Procfile release.
            await migrate.upgrade_engine(engine)
        sessions = session_factory(engine)
        app.state.db_engine = engine  # the database's; `app.state.chat_engine` is the bot's
        app.state.sessions = sessions
        # `app.state.login_throttle` (set before the lifespan starts) replaces it, e.g. with a
        # test clock. With Redis, every process counts the same failed logins.
        throttle: LoginThrottle | None = getattr(app.state, "login_throttle", None)
        if throttle is None:
            counters = (
                RedisCounters(settings.redis_url, settings.redis_key_prefix)
                if settings.redis_url
                else None
            )
            throttle = app.state.login_throttle = LoginThrottle(counters)
        events: EventBus = app.state.events
        registry = ChargerRegistry()
        local_commands = LocalChargerCommands(registry, timeout=settings.ocpp_call_timeout)
        commands: ChargerCommands = local_commands
        network: RedisNetwork | None = None
        if settings.redis_url:  # scale-out: any process commands any charger, via its holder
            network = RedisNetwork(
                settings.redis_url,
                prefix=settings.redis_key_prefix,
                registry=registry,
                local=local_commands,
                sessions=sessions,
                events=events,
                call_timeout=settings.ocpp_call_timeout,
                lease_seconds=settings.redis_lease_seconds,
            )
            commands = network.commands
        app.state.network = network
        charging = ChargingService(
            sessions,
            commands,
            events,
            start_timeout=settings.ocpp_start_timeout,
            idle_warning_minutes=settings.idle_warning_minutes,
            member_discount_percent=settings.member_price_per_kwh_discount_percent,
            plausibility=PlausibilityRules(
                tolerance=settings.meter_power_tolerance, slack_wh=settings.meter_slack_wh
            ),
        )
        app.state.commands = commands
        app.state.charging = charging
        local_lists = LocalListSync(sessions, commands)
        app.state.local_lists = local_lists
        app.state.reservations = ReservationService(sessions, commands)
        smart = SmartCharging(sessions, commands)
        app.state.smart_charging = smart
        jobs = ChargerJobs(
            sessions,
            commands,
            public_base_url=settings.public_base_url,
            upload_dir=Path(settings.upload_dir),
            max_upload_bytes=settings.max_upload_bytes,
            ftp_base=ftp_base(settings) if settings.ftp_upload_port else None,
        )
        app.state.jobs = jobs
        app.state.ftp_uploads = await start_ftp_uploads(settings, jobs)
        authority = (
            CertificateAuthority.load(
                settings.ocpp_ca_certfile,
                settings.ocpp_ca_keyfile,
                settings.ocpp_client_cert_days,
            )
            if settings.ocpp_ca_certfile
            else None
        )
        certificates = ChargerCertificates(sessions, commands, authority)
        app.state.certificates = certificates
        # Card payments only with a Stripe key; `app.state.stripe_http_client` (set before the
        # lifespan starts) replaces the SDK's HTTP client, e.g. with a test double.
        payments = (
            PaymentService(
                sessions,
                charging,
                events,
                StripeGateway(
                    settings.stripe_api_key,
                    settings.stripe_webhook_secret,
                    api_base=settings.stripe_api_base,
                    http_client=getattr(app.state, "stripe_http_client", None),
                ),
                hold_amount_minor=settings.stripe_hold_amount_minor,
                public_base_url=settings.public_base_url,
                telegram_bot_username=settings.telegram_bot_username,
                member_price_id=settings.stripe_member_price_id,
            )
            if settings.stripe_api_key
            else None
        )
        app.state.payments = payments
        # The demo without a Stripe key: a labelled local test payment page, same flow.
        # The same payment service on the demo's gateway: no money, no network.
        demo_payments = (
            PaymentService(
                sessions,
                charging,
                events,
                DemoGateway(settings.public_base_url),
                hold_amount_minor=settings.stripe_hold_amount_minor,
                public_base_url=settings.public_base_url,
                telegram_bot_username=settings.telegram_bot_username,
            )
            if payments is None and settings.is_development
            else None
        )
        app.state.demo_payments = demo_payments
        if demo_payments is not None:
            events.subscribe(demo_payments, local_only=True)
        if payments is not None:
            # local_only: with Redis, only the process where an event happened settles it.
            events.subscribe(payments, local_only=True)
        # A charge paid with a card hold is stopped before its cost passes the hold.
        hold_guard = HoldGuard(sessions, charging, events)
        app.state.hold_guard = hold_guard
        events.subscribe(hold_guard, local_only=True)
        # Prices on chargers' displays (California Pricing DataTransfer), where they show them.
        price_display = PriceDisplay(sessions, commands)
        app.state.price_display = price_display
        events.subscribe(price_display, local_only=True)
        app.state.central = central.CentralSystem(
            ChargerStateService(sessions),
            charging,
            registry,
            commands,
            jobs,
            auto_register=settings.ocpp_auto_register,
            call_timeout=settings.ocpp_call_timeout,
            heartbeat_interval=settings.ocpp_heartbeat_interval,
            leases=network,
            key_pepper=charger_keys.pepper_from(settings.ocpp_key_pepper, settings.secret_key),
            allow_unsecured=settings.ocpp_unsecured_allowed,
            max_message_bytes=settings.ocpp_max_message_bytes,
            verified_keys=charger_keys.VerifiedKeys(
                settings.ocpp_key_cache_seconds, settings.ocpp_key_cache_size
            ),
            seen_flush_interval=settings.ocpp_last_seen_flush_seconds,
            boot_capacity=settings.ocpp_boot_capacity,
            boot_retry_seconds=settings.ocpp_boot_retry_seconds,
            handler_concurrency=settings.ocpp_handler_concurrency,
            status_trigger_seconds=settings.ocpp_status_trigger_seconds,
            certificates=certificates,
        )
        if settings.ocpp_unsecured_allowed:
            # The demo's chargers have no keys: say so, quietly in development.
            log.log(
                logging.INFO if settings.is_development else logging.WARNING,
                "OCPP_ALLOW_UNSECURED is on%s: chargers without a key connect unauthenticated",
                " (development default)" if settings.ocpp_allow_unsecured is None else "",
            )
        app.state.outbox = Outbox()
        # backend/api reaches drivers and the FAQ through these ports, never through bot/.
        outbound: OutboundMessages = OutboxMessages(app.state.outbox)
        app.state.outbound = outbound
        faq_path = Path(settings.faq_file) if settings.faq_file else DATA_DIR / "faq.yaml"
        # `app.state.clock` (set before the lifespan starts) replaces the wall clock, so
        # tests can be outside support hours.
        clock = getattr(app.state, "clock", utcnow)
        faq = FaqService(faq_path)
        catalogue: FaqCatalogue = ServiceCatalogue(faq)
        app.state.faq = catalogue
        chat_reservations = ChatReservations(
            sessions,
            charging,
            app.state.reservations,
            outbound,
            claim_minutes=settings.queue_claim_minutes,
        )
        app.state.chat_reservations = chat_reservations
        bot_services = BotServices(
            chat_reservations=chat_reservations,
            charging=charging,
            faq=faq,
            places=Gazetteer.load(),
            settings=settings,
            payments=payments,
            demo_payments=demo_payments,
            clock=clock,
        )
        app.state.chat_engine = Engine(sessions, bot_services)
        app.state.notifier = Notifier(
            sessions,
            app.state.outbox,
            live_interval=settings.live_status_interval,
            support_hours=bot_services.support_hours,
            clock=clock,
        )
        # local_only: with Redis, only the process where an event happened tells the driver.
        events.subscribe(app.state.notifier, local_only=True)
        if network is None:
            async with sessions() as db:
                # One process holds every socket in the embedded setup: none is open yet.
                await db.execute(update(Charger).values(online=False))
                await db.commit()
        else:  # other processes hold sockets; the lease sweeper marks lapsed ones offline
            await network.start()
        app.state.central.start()
        timers = asyncio.create_task(
            _run_timers(
                charging,
                settings.sweep_interval,
                hold_guard,
                app.state.reservations,
                app.state.chat_reservations,
            )
        )
        # First contact with chargers (configuration, local list) is spread over time.
        app.state.upkeep_pace = Pace(settings.charger_upkeep_per_second)
        list_sync = (
            asyncio.create_task(
                _run_upkeep(
                    FirstRead(sessions, commands),
                    local_lists,
                    smart,
                    registry,
                    settings.charger_sync_seconds,
                    app.state.upkeep_pace,
                )
            )
            if settings.charger_sync_seconds > 0
            else None
        )
        app.state.telegram = await start_telegram(app)
        app.state.sms = await start_sms(app)
        collector = None
        if settings.gc_full_pass_seconds > 0:  # last: what startup built is frozen with it
            collector = CollectorPolicy(settings.gc_full_pass_seconds)
            collector.start()
        loop_watch = None
        if settings.loop_stall_log_ms > 0:
            loop_watch = LoopWatch(settings.loop_stall_log_ms / 1000)
            loop_watch.start()
        app.state.loop_watch = loop_watch
        try:
            yield
        finally:
            # Let everything that holds a database connection finish before the engine goes:
            # an abandoned aiosqlite connection can never be closed.
            for task in (timers, list_sync):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if loop_watch is not None:
                await loop_watch.stop()
            if collector is not None:
                await collector.stop()
            await stop_telegram(app.state.telegram)
            await app.state.central.close_all()
            await stop_ftp_uploads(app.state.ftp_uploads)
            await hold_guard.drain()
            await price_display.drain()
            await certificates.drain()
            if network is not None:
                await network.stop()
            if payments is not None:
                await payments.drain()  # before the notifier: it sends their receipts
            await app.state.notifier.drain()
            await stop_sms(app.state.sms)  # after the notifier: its last messages go out
            await throttle.close()
            await engine.dispose()

    app = FastAPI(
        title="chargebot",
        version="0.1.0",
        summary="EV charging assistant: admin API, OCPP 1.6-J central system, chat webhooks.",
        lifespan=lifespan,
        docs_url=None,  # api_docs serves /docs and /redoc with local assets, not a CDN's
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.events = EventBus()
    _install_error_handlers(app)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process serves HTTP (restart it if this fails)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: 200 only if the database takes a write and Redis (if used) answers."""
        state = request.app.state
        report = await readiness.check(state.sessions, getattr(state, "network", None))
        return JSONResponse(status_code=200 if report.ready else 503, content=report.body())

    app.include_router(admin.router)
    app.include_router(auth.router)
    app.include_router(support.router)
    app.include_router(central.router)
    app.include_router(telegram_router)
    app.include_router(sms_router)
    app.include_router(payments_api.router)
    app.include_router(demo_payments_api.router)
    app.include_router(uploads_api.router)
    api_docs.install(app)
    console.install(app)
    return app
