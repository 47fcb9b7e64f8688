"""Outbound SMS through Twilio's REST API, and the delivery status of each message.

`TwilioSender` sends notifications and support replies with Twilio's (blocking) client in a
worker thread, off the request that caused them: a bounded retry with backoff on
5xx/429/network errors, a per-number hourly cap, and each message's delivery status in
`sms_delivery` (`record_status`, also called by the status callback at STATUS_PATH).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Final

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, func, select
from twilio.base.exceptions import TwilioRestException
from twilio.http import HttpClient
from twilio.rest import Client

from backend.db import utcnow
from backend.models import SmsDelivery
from backend.settings import Settings
from bot.adapters.sms.conversations import masked
from bot.adapters.sms.text import segments

log = logging.getLogger(__name__)

STATUS_PATH: Final = "/sms/twilio/status"  # where Twilio reports the status of what we send
SEND_ATTEMPTS: Final = 4
RETRY_FIRST: Final = 1.0  # seconds; doubles per attempt
SEND_WORKERS: Final = 4  # messages to one number always use the same worker: kept in order
# Later statuses never go back to earlier ones (callbacks may arrive out of order).
STATUS_RANK: Final = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "receiving": 3,
    "received": 4,
    "delivered": 5,
    "undelivered": 5,
    "failed": 5,
    "read": 6,
    "canceled": 5,
}


class TwilioSender:
    """Queues outbound SMS and sends them with Twilio's (blocking) client in threads."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        *,
        http_client: HttpClient | None = None,
        retry_first: float = RETRY_FIRST,
        attempts: int = SEND_ATTEMPTS,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._client = Client(
            settings.twilio_account_sid, settings.twilio_auth_token, http_client=http_client
        )
        self._retry_first = retry_first
        self._attempts = attempts
        self._cap = settings.sms_hourly_cap
        self._status_callback = f"{settings.public_base_url}{STATUS_PATH}"
        self._queues: list[asyncio.Queue[tuple[str, str]]] = [
            asyncio.Queue() for _ in range(SEND_WORKERS)
        ]
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._work(queue), name=f"twilio-sender-{index}")
            for index, queue in enumerate(self._queues)
        ]

    async def stop(self, grace: float = 5.0) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), grace)
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    def enqueue(self, to: str, body: str) -> None:
        """Send later, in order per number; never blocks, never raises."""
        self._queues[sum(map(ord, to)) % len(self._queues)].put_nowait((to, body))

    async def drain(self) -> None:
        """Wait until everything queued has been sent or given up (tests, shutdown)."""
        for queue in self._queues:
            await queue.join()

    async def _work(self, queue: asyncio.Queue[tuple[str, str]]) -> None:
        while True:
            to, body = await queue.get()
            try:
                await self.send(to, body)
            except Exception:
                log.exception("sending an SMS to %s failed", masked(to))
            finally:
                queue.task_done()

    async def send(self, to: str, body: str) -> str | None:
        """Send now (with retries); the MessageSid, or None if dropped or failed."""
        if await self._sent_last_hour(to) >= self._cap:
            log.warning(
                "SMS to %s dropped: the cap of %d messages per hour is reached",
                masked(to),
                self._cap,
            )
            return None
        delay = self._retry_first
        for attempt in range(1, self._attempts + 1):
            try:
                sid, status = await asyncio.to_thread(self._create, to, body)
                await self._record(sid, to, status, None, body)
                return sid
            except TwilioRestException as exc:
                permanent = exc.status < 500 and exc.status != 429
                if permanent or attempt == self._attempts:
                    log.error(
                        "Twilio refused an SMS to %s (HTTP %s, error %s): %s",
                        masked(to),
                        exc.status,
                        exc.code,
                        exc.msg,
                    )
                    await self._record(None, to, "failed", str(exc.code or exc.status), body)
                    return None
                log.warning(
                    "Twilio answered HTTP %s (attempt %d of %d); retrying in %.1f s",
                    exc.status,
                    attempt,
                    self._attempts,
                    delay,
                )
            except Exception as exc:  # network errors, timeouts, ...
                if attempt == self._attempts:
                    log.error("could not reach Twilio for an SMS to %s: %r", masked(to), exc)
                    await self._record(None, to, "failed", None, body)
                    return None
                log.warning(
                    "could not reach Twilio (%r, attempt %d of %d); retrying in %.1f s",
                    exc,
                    attempt,
                    self._attempts,
                    delay,
                )
            await asyncio.sleep(delay)
            delay *= 2
        return None  # attempts < 1

    def _create(self, to: str, body: str) -> tuple[str, str]:
        """The blocking REST call; runs in a worker thread."""
        sender: dict[str, str] = (
            {"messaging_service_sid": self._settings.twilio_messaging_service_sid}
            if self._settings.twilio_messaging_service_sid
            else {"from_": self._settings.twilio_from_number}
        )
        message = self._client.messages.create(
            to=to, body=body, status_callback=self._status_callback, **sender
        )
        return str(message.sid), str(message.status or "queued")

    async def _sent_last_hour(self, to: str) -> int:
        since = utcnow() - timedelta(hours=1)
        async with self._sessions() as db:
            count = await db.scalar(
                select(func.count())
                .select_from(SmsDelivery)
                .where(col(SmsDelivery.to_number) == to, col(SmsDelivery.created_at) >= since)
            )
        return int(count or 0)

    async def _record(
        self, sid: str | None, to: str, status: str, error: str | None, body: str
    ) -> None:
        try:
            await record_status(
                self._sessions, sid, status, error, to=to, parts=segments(body), sent=True
            )
        except Exception:
            log.exception("could not record the delivery of an SMS to %s", masked(to))


async def record_status(
    sessions: async_sessionmaker[AsyncSession],
    sid: str | None,
    status: str,
    error: str | None,
    *,
    to: str | None = None,
    parts: int | None = None,
    sent: bool = False,
) -> None:
    """Create or update the delivery row of `sid`; a status never goes back to an earlier one.

    The status callback may arrive before the REST call returned: whichever comes first
    creates the row.
    """
    for _ in range(2):
        async with sessions() as db:
            row = None
            if sid is not None:
                row = await db.scalar(
                    select(SmsDelivery).where(col(SmsDelivery.message_sid) == sid)
                )
            if row is None:
                row = SmsDelivery(
                    message_sid=sid,
                    to_number=(to or "")[:20],
                    status=status[:20],
                    error_code=error[:16] if error else None,
                    segments=parts or 1,
                )
                db.add(row)
            else:
                if sent:
                    row.to_number = (to or row.to_number)[:20]
                    row.segments = parts or row.segments
                if STATUS_RANK.get(status, 0) >= STATUS_RANK.get(row.status, 0):
                    row.status = status[:20]
                    row.error_code = error[:16] if error else row.error_code
                row.updated_at = utcnow()
            try:
                await db.commit()
                return
            except IntegrityError:
                continue  # the other side created it meanwhile: update it instead
