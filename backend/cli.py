"""The `chargebot` command: serve, db upgrade, staff add, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import ssl
import sys
from collections.abc import Sequence
from typing import Any

from backend.settings import ConfigurationError, Settings


def _settings_or_exit(**overrides: object) -> Settings:
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
        settings.check_secrets()
    except (ConfigurationError, ValueError) as exc:
        print(f"chargebot: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    return settings


def serve_options(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """uvicorn's options for `chargebot serve`: TLS when TLS_CERTFILE is set (wss://, OCPP
    security profile 2: TLS with HTTP Basic charger keys)."""
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "proxy_headers": True,
        "forwarded_allow_ips": args.forwarded_allow_ips,
        "log_level": args.log_level,
        # The only WebSockets are chargers': a larger frame closes the socket (1009) before
        # it is buffered (uvicorn's default is 16 MiB).
        "ws_max_size": settings.ocpp_max_message_bytes,
    }
    return options | tls_options(settings)


def tls_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's TLS options: a certificate (profile 2), and with TLS_CLIENT_CAFILE client
    certificates verified and handed to the OCPP endpoint (profile 3)."""
    if not settings.tls_certfile:
        return {}
    options: dict[str, Any] = {
        "ssl_certfile": settings.tls_certfile,
        "ssl_keyfile": settings.tls_keyfile,
    }
    if settings.tls_client_cafile:
        from backend.chargers import client_certificates

        options |= {
            "ssl_ca_certs": settings.tls_client_cafile,
            "ssl_cert_reqs": ssl.CERT_OPTIONAL,
            "ws": client_certificates.PROTOCOL_PATH,
        }
    return options


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from backend.app import create_app

    settings = _settings_or_exit()
    options = serve_options(args, settings)
    if args.workers < 1:
        print("chargebot: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers == 1:
        uvicorn.run(create_app(settings), **options)
        return 0
    if not settings.redis_url:
        print(
            "chargebot: --workers N > 1 needs REDIS_URL: the processes share the port, so a "
            "charger's socket and a command for it may land in different ones (README "
            '"Several processes on one machine")',
            file=sys.stderr,
        )
        return 2
    if settings.telegram_bot_token and settings.telegram_mode == "polling":
        print(
            "chargebot: --workers N > 1 cannot poll Telegram (each worker would poll, and "
            "Telegram refuses competing getUpdates); use TELEGRAM_MODE=webhook",
            file=sys.stderr,
        )
        return 2
    _prepare_for_workers(settings)
    # Each worker builds its app from the same environment (uvicorn spawns them), and they
    # accept on one shared socket; leases and the Redis relay route commands between them.
    uvicorn.run("backend.app:create_app", factory=True, workers=args.workers, **options)
    return 0


def _prepare_for_workers(settings: Settings) -> None:
    """What the workers must not race on: the embedded database's migrations, once."""
    from backend import migrate
    from backend.db import sqlite_file

    if sqlite_file(settings.database_url) is not None:
        asyncio.run(migrate.upgrade(settings.database_url, "head"))


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    from backend import migrate

    settings = _settings_or_exit()
    asyncio.run(migrate.upgrade(settings.database_url, args.revision))
    print(f"database at revision {args.revision}: {_redacted(settings.database_url)}")
    return 0


def _cmd_db_revision(args: argparse.Namespace) -> int:
    from backend import migrate

    settings = _settings_or_exit()
    asyncio.run(migrate.autogenerate(settings.database_url, args.message))
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    password = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != password:
        print("chargebot: the passwords differ", file=sys.stderr)
        raise SystemExit(2)
    return password


def _cmd_staff_add(args: argparse.Namespace) -> int:
    from backend.services.errors import ConflictError, InvalidFieldError

    settings = _settings_or_exit()
    password = _read_password(args)
    try:
        staff_id, email = asyncio.run(_add_staff(settings, args, password))
    except (ConflictError, InvalidFieldError) as exc:
        field = getattr(exc, "field", None)
        print(f"chargebot: {field + ': ' if field else ''}{exc}", file=sys.stderr)
        return 1
    print(f"staff user {staff_id} added: {email} ({args.role})")
    return 0


async def _add_staff(
    settings: Settings, args: argparse.Namespace, password: str
) -> tuple[int | None, str]:
    from backend import migrate
    from backend.db import create_engine, session_factory, sqlite_file
    from backend.services.staff import create_staff

    engine = create_engine(settings.database_url)
    try:
        if sqlite_file(settings.database_url) is not None:
            await migrate.upgrade_engine(engine)  # as the app does for the embedded database
        async with session_factory(engine)() as db:
            staff = await create_staff(
                db, email=args.email, name=args.name, role=args.role, password=password
            )
            return staff.id, staff.email
    finally:
        await engine.dispose()


def _cmd_simulate(args: argparse.Namespace) -> int:
    from backend.chargers.simulator import SimulatorConfig, simulate_forever

    config = SimulatorConfig(
        url=args.url.rstrip("/"),
        charge_point_id=args.id,
        password=args.password,
        connectors=args.connectors,
        power_kw=args.power_kw,
        meter_interval=args.meter_interval,
        time_scale=args.time_scale,
    )
    try:
        asyncio.run(simulate_forever(config))
    except KeyboardInterrupt:
        print(f"simulator {args.id} stopped.")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from backend.demo import reset_demo_database, run_demo

    sms = None
    if args.sms:
        from backend.services.phones import InvalidPhoneNumberError, to_e164

        try:
            sms = to_e164(args.sms)
        except InvalidPhoneNumberError as exc:
            print(f"--sms: {exc}", file=sys.stderr)
            return 2
    if not args.keep:
        reset_demo_database()
    try:
        return asyncio.run(
            run_demo(
                host=args.host,
                port=args.port,
                chat=not args.no_chat,
                lang=args.lang,
                sms=sms,
                pay=args.pay,
            )
        )
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after a clean shutdown
        print("chargebot demo stopped.")
        return 0


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chargebot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the web server (admin API, OCPP, webhooks)")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve.add_argument(
        "--forwarded-allow-ips",
        default=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        help="proxies whose X-Forwarded-* headers are trusted",
    )
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--workers",
        type=int,
        # Not WEB_CONCURRENCY: platforms (Heroku's Python buildpack) set that one themselves.
        default=os.environ.get("CHARGEBOT_WORKERS", "1"),
        help="server processes sharing the port (needs REDIS_URL); default 1, or CHARGEBOT_WORKERS",
    )
    serve.set_defaults(handler=_cmd_serve)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply migrations (default: to the newest)")
    upgrade.add_argument("--revision", default="head")
    upgrade.set_defaults(handler=_cmd_db_upgrade)
    revision = db_commands.add_parser(
        "revision", help="(developers) write a migration from model changes; database at head"
    )
    revision.add_argument("--message", "-m", required=True)
    revision.set_defaults(handler=_cmd_db_revision)

    staff = commands.add_parser("staff", help="support agents and operators")
    staff_commands = staff.add_subparsers(dest="staff_command", required=True)
    staff_add = staff_commands.add_parser("add", help="add a staff user (asks for the password)")
    staff_add.add_argument("--email", required=True)
    staff_add.add_argument("--name", required=True)
    staff_add.add_argument("--role", required=True, choices=["support", "operator"])
    staff_add.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin (scripts)"
    )
    staff_add.set_defaults(handler=_cmd_staff_add)

    simulate = commands.add_parser(
        "simulate", help="a simulated OCPP 1.6-J charge point that connects to a central system"
    )
    simulate.add_argument("--url", required=True, help="endpoint base, e.g. ws://HOST:PORT/ocpp")
    simulate.add_argument("--id", required=True, help="charge point identity, e.g. CP-1")
    simulate.add_argument("--password", default=None, help="HTTP Basic auth password")
    simulate.add_argument("--connectors", type=int, default=2)
    simulate.add_argument("--power-kw", type=float, default=11.0)
    simulate.add_argument("--meter-interval", type=float, default=10.0, help="seconds")
    simulate.add_argument(
        "--time-scale", type=float, default=1.0, help="simulated seconds per real second"
    )
    simulate.set_defaults(handler=_cmd_simulate)

    demo = commands.add_parser("demo", help="the embedded demo: SQLite, seeded network, server")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument(
        "--keep", action="store_true", help="keep the demo database of a previous run"
    )
    demo.add_argument("--no-chat", action="store_true", help="serve only, no console chat")
    demo.add_argument(
        "--pay",
        action="store_true",
        help="chat as a pay-per-session driver: starts go through the local test payment page",
    )
    demo.add_argument(
        "--lang", choices=["sv", "en"], default="sv", help="the console driver's language"
    )
    demo.add_argument(
        "--sms",
        metavar="NUMBER",
        default=None,
        help="chat as this phone number over the SMS grammar (e.g. +46701234567)",
    )
    demo.set_defaults(handler=_cmd_demo)

    from bot.faq.cli import add_faq_parser

    add_faq_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Frames carry id tags (personal data) and are many: opt in with OCPP_FRAME_LOG=1.
    quiet = ["alembic", "backend.chargers.simulator"]
    if os.environ.get("OCPP_FRAME_LOG") != "1":
        quiet += ["ocpp"]
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    from backend.logs import protect_logs

    protect_logs()  # httpx quiet, records scrubbed; the app adds its secrets when created
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
