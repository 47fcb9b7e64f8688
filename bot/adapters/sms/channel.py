"""The SMS channel in the app: answers to inbound SMS, outbound sends, its start and stop.

`SmsChannel` checks `X-Twilio-Signature` against `PUBLIC_BASE_URL` + path, the URL Twilio
called, so validation also holds behind a TLS-terminating proxy; answers in time for the
webhook's TwiML or later by REST; and is the outbox's sender of channel sms.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any, Final

from fastapi import FastAPI, Request
from starlette.datastructures import FormData
from twilio.request_validator import RequestValidator

from backend.settings import Settings
from bot.adapters.sms.conversations import CHANNEL, SmsConversations
from bot.adapters.sms.sender import RETRY_FIRST, TwilioSender
from bot.engine import Engine
from bot.messages import Reply
from bot.outbox import Outbox

log = logging.getLogger(__name__)

SIGNATURE_HEADER: Final = "X-Twilio-Signature"


class SmsChannel:
    """Inbound webhook handling plus, when configured, outbound sending via REST."""

    def __init__(
        self,
        settings: Settings,
        conversations: SmsConversations,
        sender: TwilioSender | None,
    ) -> None:
        self.settings = settings
        self.conversations = conversations
        self.sender = sender
        self.validator = RequestValidator(settings.twilio_auth_token)
        self._tasks: set[asyncio.Task[Any]] = set()

    def signed(self, request: Request, form: FormData) -> bool:
        """X-Twilio-Signature matches the public URL Twilio called and the form it posted."""
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not signature:
            return False
        url = f"{self.settings.public_base_url}{request.url.path}"
        if request.url.query:
            url = f"{url}?{request.url.query}"
        return bool(self.validator.validate(url, form, signature))

    async def answer(self, phone: str, body: str, message_sid: str | None) -> str | None:
        """The TwiML answer's text; one that takes too long is sent by REST when ready."""
        task = asyncio.create_task(self.conversations.handle(phone, body, message_sid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        done, _ = await asyncio.wait({task}, timeout=self.settings.sms_reply_timeout)
        if done:
            if task.exception() is not None:
                log.error("answering an SMS failed", exc_info=task.exception())
                return None
            return task.result()
        log.warning("the answer to an SMS took too long; it will be sent by REST")
        task.add_done_callback(lambda finished: self._late(phone, finished))
        return None

    def _late(self, phone: str, task: asyncio.Task[str | None]) -> None:
        if task.cancelled():
            return
        if task.exception() is not None:
            log.error("answering an SMS failed", exc_info=task.exception())
            return
        text = task.result()
        if text:
            self.send(phone, text)

    def send(self, phone: str, text: str) -> None:
        if self.sender is None:
            log.warning("outbound SMS is not configured (TWILIO_ACCOUNT_SID...); message dropped")
            return
        self.sender.enqueue(phone, text)

    async def deliver(self, address: str, replies: Sequence[Reply]) -> None:
        """The outbox sender: notifications and support replies."""
        text = await self.conversations.outbound(address, replies)
        if text:
            self.send(address, text)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self.sender is not None:
            await self.sender.drain()

    async def stop(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), 10)
        for task in list(self._tasks):
            task.cancel()
        if self.sender is not None:
            await self.sender.stop()


def _outbound_configured(settings: Settings) -> bool:
    return bool(
        settings.twilio_account_sid
        and settings.twilio_auth_token
        and (settings.twilio_from_number or settings.twilio_messaging_service_sid)
    )


async def start_sms(app: FastAPI) -> SmsChannel | None:
    """The SMS channel, or None when TWILIO_AUTH_TOKEN is empty (the webhooks are then 404).

    `app.state.twilio_http_client` (set before the lifespan starts) replaces the HTTP client
    of Twilio's REST client, and `app.state.twilio_retry_first` the first retry delay; tests
    use both.
    """
    settings: Settings = app.state.settings
    if not settings.twilio_auth_token:
        log.info("TWILIO_AUTH_TOKEN is empty; the SMS channel is off")
        return None
    engine = app.state.chat_engine
    if not isinstance(engine, Engine):
        raise TypeError("app.state.chat_engine must be the conversation engine")
    conversations = SmsConversations(
        app.state.sessions, engine, default_region=settings.default_phone_region
    )
    sender = None
    if _outbound_configured(settings):
        sender = TwilioSender(
            settings,
            app.state.sessions,
            http_client=getattr(app.state, "twilio_http_client", None),
            retry_first=getattr(app.state, "twilio_retry_first", RETRY_FIRST),
        )
        sender.start()
    else:
        log.warning(
            "TWILIO_ACCOUNT_SID and TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID are "
            "needed to send SMS on our own; only answers to incoming SMS work"
        )
    channel = SmsChannel(settings, conversations, sender)
    outbox: Outbox = app.state.outbox
    outbox.register(CHANNEL, channel.deliver)
    return channel


async def stop_sms(channel: SmsChannel | None) -> None:
    if channel is not None:
        await channel.stop()
