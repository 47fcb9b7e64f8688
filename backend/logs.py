"""Logging that keeps secrets out of the log.

Two layers. httpx and httpcore log every request URL at INFO, and a Telegram Bot API URL
carries the bot token (`https://api.telegram.org/bot<token>/sendMessage`): they are raised to
WARNING. And every log record, of any logger and level, is scrubbed when it is created
(a `logging` record factory, so handlers of uvicorn, pytest or a log shipper all see the clean
text): Bot API URLs become `/bot<redacted>/`, anything shaped like a bot token and the
configured secrets (`SECRET_VALUES` of the settings) become `<redacted>`, in the message and
in the text of an attached exception.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

from backend.settings import Settings

REDACTED = "<redacted>"
QUIET_LOGGERS = ("httpx", "httpcore")  # request URLs at INFO; a Bot API URL has the token
# Settings whose values never belong in a log (shorter values are not searched for: a
# two-letter development value would blank out every word containing it).
SECRET_SETTINGS = (
    "admin_token",
    "secret_key",
    "telegram_bot_token",
    "telegram_webhook_secret",
    "twilio_auth_token",
    "stripe_api_key",
    "stripe_webhook_secret",
    "ocpp_key_pepper",
)
MIN_SECRET_LENGTH = 8

_BOT_URL = re.compile(r"/bot\d+:[^/\s'\"?#]+")
_BOT_TOKEN = re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{30,}")


class Redactor:
    """Replaces Bot API tokens and registered secret values in text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()

    def add(self, values: Iterable[str]) -> None:
        with self._lock:
            known = set(self._secrets)
            known.update(v for v in values if len(v) >= MIN_SECRET_LENGTH)
            # Longest first: a secret that contains another is replaced whole.
            self._secrets = tuple(sorted(known, key=len, reverse=True))

    def redact(self, text: str) -> str:
        text = _BOT_URL.sub(f"/bot{REDACTED}", text)
        text = _BOT_TOKEN.sub(REDACTED, text)
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def scrub(self, record: logging.LogRecord) -> None:
        """Redact a record's message (args merged in) and exception text, in place."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: the handler reports it as usual
            return
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))


redactor = Redactor()
_installed = False
_install_lock = threading.Lock()


def _install_record_factory() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def scrubbed_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            redactor.scrub(record)
            return record

        logging.setLogRecordFactory(scrubbed_record)
        _installed = True


def secret_values(settings: Settings) -> list[str]:
    return [str(getattr(settings, name, "") or "") for name in SECRET_SETTINGS]


def protect_logs(settings: Settings | None = None) -> None:
    """Quiet the URL loggers and scrub every record; idempotent (each app adds its secrets)."""
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
    _install_record_factory()
    if settings is not None:
        redactor.add(secret_values(settings))
