"""No secret in the log. The incident: httpx logged every Bot API URL at INFO, and a Bot API
URL carries the bot token (`https://api.telegram.org/bot<token>/sendMessage`).

The Telegram double is reached here through python-telegram-bot's real `HTTPXRequest` (an
httpx client on a mock transport), so httpx's own request logging runs as in production.
"""

from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from telegram.request import HTTPXRequest

from backend.app import create_app
from backend.logs import REDACTED, Redactor
from backend.settings import Settings
from bot.adapters.telegram import SECRET_HEADER
from tests.helpers.server import served
from tests.helpers.telegram_double import RecordingRequest, message_update, telegram_user
from tests.helpers.waiting import eventually

TOKEN = "7000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
WEBHOOK_SECRET = "telegram-webhook-secret-for-the-log-test-0123"
ERIK = telegram_user(444_555_666, "Erik", "Svensson", "sv")


def _decoded(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def httpx_bot_api(api: RecordingRequest) -> HTTPXRequest:
    """PTB's production request class; its httpx client answers from the double."""

    async def handler(request: httpx.Request) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode(), keep_blank_values=True))
        params = SimpleNamespace(parameters={k: _decoded(v) for k, v in form.items()})
        status, body = await api.do_request(str(request.url), request.method, params)  # type: ignore[arg-type]
        return httpx.Response(status, content=body)

    return HTTPXRequest(httpx_kwargs={"transport": httpx.MockTransport(handler)})


def assert_no_secret(records: list[logging.LogRecord], *secrets: str) -> None:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in records:
        text = formatter.format(record)
        for secret in secrets:
            assert secret not in text, text
            assert secret.split(":")[-1] not in text, text


@pytest.mark.parametrize("httpx_level", [None, logging.INFO])
async def test_the_bot_token_never_reaches_the_log(
    settings: Settings, caplog: pytest.LogCaptureFixture, httpx_level: int | None
) -> None:
    """As configured (httpx at WARNING), and with httpx turned back up to INFO by hand."""
    caplog.set_level(logging.INFO)
    bot_settings = settings.model_copy(
        update={
            "telegram_bot_token": TOKEN,
            "telegram_mode": "webhook",
            "telegram_webhook_secret": WEBHOOK_SECRET,
        }
    )
    api = RecordingRequest(username="chargebot_test_bot")
    app = create_app(bot_settings)
    if httpx_level is not None:
        caplog.set_level(httpx_level, logger="httpx")
    app.state.telegram_request = httpx_bot_api(api)
    async with served(app) as live:
        await asyncio.wait_for(app.state.telegram.registered.wait(), 10)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{live.port}") as telegram:
            for text in ["/start", "/help", "hej, var kan jag ladda?"]:
                response = await telegram.post(
                    "/telegram/webhook",
                    json=message_update(ERIK, text),
                    headers={SECRET_HEADER: WEBHOOK_SECRET},
                )
                assert response.status_code == 200
            await eventually(
                lambda: asyncio.sleep(0, api.texts(ERIK["id"])), lambda t: len(t) >= 3, within=10
            )
            assert len(api.texts(ERIK["id"])) >= 3
    records = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert records
    assert_no_secret(records, TOKEN, WEBHOOK_SECRET)
    requests = [r.getMessage() for r in records if r.name == "httpx"]
    if httpx_level is None:
        assert requests == []  # raised to WARNING by the app
    else:
        assert any(f"/bot{REDACTED}/sendMessage" in m for m in requests), requests


def test_a_failing_bot_api_call_is_logged_without_the_token(
    caplog: pytest.LogCaptureFixture, settings: Settings
) -> None:
    """An exception's text (httpx puts the URL in it) is scrubbed as well."""
    create_app(settings.model_copy(update={"telegram_bot_token": TOKEN}))
    caplog.set_level(logging.INFO)
    url = f"https://api.telegram.org/bot{TOKEN}/getMe"
    try:
        raise httpx.HTTPStatusError(
            f"Client error '401 Unauthorized' for url '{url}'",
            request=httpx.Request("POST", url),
            response=httpx.Response(401),
        )
    except httpx.HTTPStatusError:
        logging.getLogger("chargebot.test").exception("calling %s failed", url)
    [record] = [r for r in caplog.records if r.name == "chargebot.test"]
    assert record.getMessage() == f"calling https://api.telegram.org/bot{REDACTED}/getMe failed"
    assert TOKEN not in caplog.text
    assert "bot<redacted>/getMe" in caplog.text


def test_the_redactor_knows_bot_urls_bare_tokens_and_configured_secrets() -> None:
    redactor = Redactor()
    redactor.add(["a-configured-admin-token-0123456789", "short"])
    assert redactor.redact(f"POST https://api.telegram.org/bot{TOKEN}/sendMessage 200") == (
        f"POST https://api.telegram.org/bot{REDACTED}/sendMessage 200"
    )
    assert redactor.redact(f"token={TOKEN}") == f"token={REDACTED}"
    assert redactor.redact("Bearer a-configured-admin-token-0123456789") == f"Bearer {REDACTED}"
    assert redactor.redact("a short word") == "a short word"  # too short to search for
    assert redactor.redact("/bots/ and /robot/") == "/bots/ and /robot/"
