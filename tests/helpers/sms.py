"""The served app with SMS on, seen from Twilio's side: signed webhook posts and the REST double."""

from __future__ import annotations

import contextlib
import itertools
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from sqlmodel import SQLModel, func, select

from backend.app import create_app
from backend.settings import Settings
from bot.adapters.sms import SIGNATURE_HEADER
from bot.adapters.sms.text import GSM7_BASIC, segments
from tests.helpers.server import LiveServer, served
from tests.helpers.twilio_double import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    RecordingTwilioClient,
    signature,
)
from tests.helpers.waiting import eventually

PUBLIC = "https://chargebot.example.se"  # PUBLIC_BASE_URL; the test client speaks plain http
ANNA = "+46701234567"
EMMA = "+46731234567"


_sids = itertools.count(1)


def sms_settings(settings: Settings, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": AUTH_TOKEN,
            "twilio_from_number": FROM_NUMBER,
            "ocpp_call_timeout": 5.0,
            "ocpp_start_timeout": 30.0,
            "sweep_interval": 0.1,
            **overrides,
        }
    )


@dataclass
class Twilio:
    """The served app with SMS on, seen from Twilio's side."""

    live: LiveServer
    api: RecordingTwilioClient
    http: httpx.AsyncClient  # no admin token, plain http to the loopback port

    async def post(
        self, path: str, params: dict[str, str], *, sign_url: str | None = None, sign: bool = True
    ) -> httpx.Response:
        headers = {}
        if sign:
            headers[SIGNATURE_HEADER] = signature(sign_url or f"{PUBLIC}{path}", params)
        return await self.http.post(path, data=params, headers=headers)

    async def text(self, sender: str, body: str, sid: str | None = None) -> str | None:
        """Send an SMS; the text of the TwiML answer (None: an empty <Response/>)."""
        response = await self.post("/sms/twilio", inbound(sender, body, sid))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/xml")
        answer = twiml_text(response.text)
        if answer is not None:
            assert_sendable(answer)
        return answer

    async def sent(self, number: str, fragment: str, within: float = 15) -> str:
        """The SMS sent through the REST API to `number` that contains `fragment`."""

        async def probe() -> list[str]:
            return self.api.bodies_to(number)

        bodies = await eventually(probe, lambda b: any(fragment in x for x in b), within)
        found = next(body for body in bodies if fragment in body)
        assert_sendable(found)
        return found

    async def count(self, model: type[SQLModel]) -> int:
        async with self.live.app.state.sessions() as db:
            return int(await db.scalar(select(func.count()).select_from(model)) or 0)


def inbound(sender: str, body: str, sid: str | None = None) -> dict[str, str]:
    """The form Twilio posts for an incoming SMS."""
    sid = sid or f"SM{next(_sids):032d}"
    return {
        "ToCountry": "SE",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": body,
        "To": FROM_NUMBER,
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "FromCountry": "SE",
        "ApiVersion": "2010-04-01",
    }


def twiml_text(document: str) -> str | None:
    root = ET.fromstring(document)
    assert root.tag == "Response"
    messages = root.findall("Message")
    assert len(messages) <= 1
    return (messages[0].text or "") if messages else None


def assert_sendable(text: str) -> None:
    bad = {ch for ch in text if ch not in GSM7_BASIC}
    assert not bad, f"not GSM-7: {bad!r} in {text!r}"
    assert segments(text) <= 3, f"{segments(text)} segments: {text!r}"


@contextlib.asynccontextmanager
async def twilio_app(settings: Settings, api: RecordingTwilioClient) -> AsyncIterator[Twilio]:
    app = create_app(settings)
    app.state.twilio_http_client = api  # the REST double, in place of HTTPS to Twilio
    app.state.twilio_retry_first = 0.01
    async with (
        served(app) as live,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{live.port}") as http,
    ):
        yield Twilio(live, api, http)


async def sessions_of(twilio: Twilio) -> list[dict[str, Any]]:
    sessions: list[dict[str, Any]] = (await twilio.live.http.get("/admin/sessions")).json()
    return sessions
