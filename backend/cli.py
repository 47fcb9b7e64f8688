"""The `chargebot` command: serve, db upgrade, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from backend.settings import ConfigurationError, Settings


def _settings_or_exit(**overrides: object) -> Settings:
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
        settings.check_secrets()
    except (ConfigurationError, ValueError) as exc:
        print(f"chargebot: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    return settings


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from backend.app import create_app

    settings = _settings_or_exit()
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        proxy_headers=True,
        forwarded_allow_ips=args.forwarded_allow_ips,
        log_level=args.log_level,
    )
    return 0


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


def _cmd_demo(args: argparse.Namespace) -> int:
    from backend.demo import reset_demo_database, run_demo

    if not args.keep:
        reset_demo_database()
    try:
        return asyncio.run(run_demo(host=args.host, port=args.port))
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

    demo = commands.add_parser("demo", help="the embedded demo: SQLite, seeded network, server")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument(
        "--keep", action="store_true", help="keep the demo database of a previous run"
    )
    demo.set_defaults(handler=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
