"""SMS through Twilio: the inbound webhook, numbered choices, pages, and outbound REST sends.

Three parts:

* `SmsConversations`: channel logic without HTTP. Twilio's own keywords (STOP, START,
  HELP...) are Twilio's: an opt-out is remembered and nothing more is sent to that number
  until START. MER/MORE shows the next page, kept in `conversation.data` (`sms_pages`) so it
  survives restarts and works across processes. Everything else, keywords and numbers too, is
  text for the engine, which understands it the same way on every channel. Replies are
  rendered as one GSM-7 text (`sms_text`) with choices as a numbered list, at most three
  segments; the rest waits for MER/MORE. The demo console (`chargebot demo --sms`) uses this
  class directly.
* `TwilioSender`: outbound messages (notifications, support replies) through Twilio's REST
  client in a worker thread, off the request that caused them; a bounded retry with backoff
  on 5xx/429/network errors, a per-number hourly cap, and each message's delivery status in
  `sms_delivery` (updated by the status callback).
* the routes: `POST /sms/twilio` (inbound, answered with TwiML) and `POST /sms/twilio/status`
  (status callbacks). Both check `X-Twilio-Signature` against `PUBLIC_BASE_URL` + path, the URL
  Twilio called, so validation also holds behind a TLS-terminating proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, TextIO

from fastapi import APIRouter, FastAPI, Request, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, func, select
from starlette.datastructures import FormData
from twilio.base.exceptions import TwilioRestException
from twilio.http import HttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from backend.db import utcnow
from backend.models import Conversation, ConversationMode, ProcessedEvent, SmsDelivery
from backend.services.phones import InvalidPhoneNumberError, to_e164
from backend.settings import Settings
from bot.adapters.sms_grammar import OPT_OUT, Parsed, is_reserved, parse
from bot.adapters.sms_text import paginate, segments, sms_words, to_gsm7
from bot.conversations import record
from bot.engine import OPEN_CHOICES, Engine
from bot.i18n import DEFAULT_LANGUAGE, choose, t
from bot.messages import ChannelUser, Inbound, Reply
from bot.outbox import Outbox

log = logging.getLogger(__name__)

CHANNEL: Final = "sms"
INBOUND_PATH: Final = "/sms/twilio"
STATUS_PATH: Final = "/sms/twilio/status"
SIGNATURE_HEADER: Final = "X-Twilio-Signature"
DEDUPE_SOURCE: Final = "twilio"  # ProcessedEvent.source of inbound MessageSids
OPTED_OUT: Final = "sms_opted_out"  # Conversation.data: the number texted STOP
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


# --- the conversation side -----------------------------------------------------------------


@dataclass(frozen=True)
class _State:
    language: str
    pages: list[str]
    agent_holds: bool = False
    opted_out: bool = False


class _AddressLocks:
    """One asyncio lock per phone number, dropped when unused (SMS of one number in order)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def render(replies: Sequence[Reply], lang: str) -> tuple[str, list[str]]:
    """One GSM-7 text for the replies, with choices as a numbered list, and their payloads."""
    blocks: list[str] = []
    payloads: list[str] = []
    for reply in replies:
        lines = [sms_words(reply.text, lang)]
        for choice in reply.choices:
            payloads.append(choice.payload)
            lines.append(f"{len(payloads)}) {choice.label}")
        lines.extend(f"{link.label}: {link.url}" for link in reply.links)
        blocks.append("\n".join(line for line in lines if line))
    if payloads:
        blocks.append(choose(lang, len(payloads)))
    return to_gsm7("\n\n".join(block for block in blocks if block)), payloads


class SmsConversations:
    """SMS bodies in, the text to answer out; choices and pages live in the conversation."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        engine: Engine,
        *,
        default_region: str = "SE",
    ) -> None:
        self._sessions = sessions
        self._engine = engine
        self.default_region = default_region
        self._locks = _AddressLocks()

    async def handle(self, phone: str, body: str, message_id: str | None = None) -> str | None:
        """The answer to one SMS from `phone` (E.164), or None when none is due."""
        parsed = parse(body)
        if parsed.kind == "empty":
            return None  # a lone picture
        async with self._locks.hold(phone):
            if parsed.kind == "reserved":
                # Twilio answers its own keywords and blocks our texts after STOP; we only
                # remember the opt-out so the demo and our notifications honour it too.
                await self._opt(phone, parsed.keyword or "")
                return None
            if message_id and not await self._first_time(message_id):
                log.info("SMS %s already handled (a Twilio retry)", message_id)
                return None
            return await self._answer(phone, body, parsed, message_id)

    async def outbound(self, phone: str, replies: Sequence[Reply]) -> str | None:
        """The text to send for notifications; long ones leave the rest for MER/MORE."""
        async with self._locks.hold(phone):
            return await self._remember(phone, replies)

    async def opted_out(self, phone: str) -> bool:
        """The number has texted STOP (and not START since)."""
        state = await self._state(phone)
        return state is not None and state.opted_out

    async def _first_time(self, message_id: str) -> bool:
        async with self._sessions() as db:
            db.add(ProcessedEvent(source=DEDUPE_SOURCE, event_id=message_id[:255]))
            try:
                await db.commit()
            except IntegrityError:
                return False
        return True

    async def _state(self, phone: str) -> _State | None:
        async with self._sessions() as db:
            conversation = await _conversation(db, phone)
            if conversation is None:
                return None
            data = conversation.data or {}
            return _State(
                conversation.language,
                [str(p) for p in data.get("sms_pages") or []],
                conversation.mode == ConversationMode.AGENT,
                bool(data.get(OPTED_OUT)),
            )

    async def _answer(
        self, phone: str, body: str, parsed: Parsed, message_id: str | None
    ) -> str | None:
        state = await self._state(phone)
        lang = state.language if state else DEFAULT_LANGUAGE
        if parsed.kind == "more":  # pages the bot's answers and an agent's replies alike
            if state is None or not state.pages:
                return await self._local(phone, body, t(lang, "sms_no_more"))
            return await self._next_page(phone, body, state.pages)
        # Everything else is the engine's to understand, as on every other channel; a new
        # number's language is the one its first words are in ("NEAR Uppsala").
        first_words = None if state else self._engine.services.intents.understand(body).lang
        user = ChannelUser(phone=phone, language_code=first_words)
        inbound = Inbound(CHANNEL, phone, text=body.strip(), user=user, message_id=message_id)
        try:
            replies = await self._engine.handle(inbound)
        except Exception:
            log.exception("the engine failed on an SMS from %s", _masked(phone))
            return to_gsm7(t(lang, "sms_error"))
        if not replies:
            return None
        return await self._remember(phone, replies)  # None after an opt-out: it acted, silently

    async def _remember(self, phone: str, replies: Sequence[Reply]) -> str | None:
        """Render, keep the pages after the first; the first page to send, None if opted out."""
        async with self._sessions() as db:
            conversation = await _conversation(db, phone)
            if conversation is not None and (conversation.data or {}).get(OPTED_OUT):
                return None
            lang = conversation.language if conversation else DEFAULT_LANGUAGE
            text, payloads = render(replies, lang)
            pages = paginate(text, to_gsm7(t(lang, "sms_more")))
            if not pages:
                return None
            if conversation is not None:
                data = {**(conversation.data or {}), "sms_pages": pages[1:]}
                if payloads:  # a notification's numbered choices: the menu numbers answer
                    data[OPEN_CHOICES] = payloads
                conversation.data = data
                await db.commit()
            return pages[0]

    async def _opt(self, phone: str, keyword: str) -> None:
        """STOP and its kin opt the number out of our texts (Twilio enforces it); START back in."""
        opted_out = keyword in OPT_OUT
        async with self._sessions() as db:
            conversation = await _conversation(db, phone)
            if conversation is None or bool((conversation.data or {}).get(OPTED_OUT)) == opted_out:
                return
            conversation.data = {**(conversation.data or {}), OPTED_OUT: opted_out}
            await record(db, conversation, "in", "driver", keyword.upper())
            await db.commit()
            log.info("SMS %s opted %s", _masked(phone), "out" if opted_out else "back in")

    async def _next_page(self, phone: str, body: str, pages: list[str]) -> str:
        async with self._sessions() as db:
            conversation = await _conversation(db, phone)
            assert conversation is not None
            conversation.data = {**(conversation.data or {}), "sms_pages": pages[1:]}
            await record(db, conversation, "in", "driver", body.strip())
            await record(db, conversation, "out", "bot", pages[0])
            conversation.updated_at = utcnow()
            await db.commit()
        return pages[0]

    async def _local(self, phone: str, body: str, text: str) -> str:
        """An answer the adapter gives itself (menu, hints); in the transcript if there is one."""
        answer = paginate(to_gsm7(text), "")[0]
        async with self._sessions() as db:
            conversation = await _conversation(db, phone)
            if conversation is not None:
                await record(db, conversation, "in", "driver", body.strip())
                await record(db, conversation, "out", "bot", answer)
                await db.commit()
        return answer


async def _conversation(db: AsyncSession, phone: str) -> Conversation | None:
    return await db.scalar(
        select(Conversation).where(
            col(Conversation.channel) == CHANNEL, col(Conversation.address) == phone
        )
    )


def _masked(phone: str) -> str:
    """Phone numbers in logs: enough to tell them apart, not to call them."""
    return f"{phone[:4]}...{phone[-2:]}" if len(phone) > 6 else "..."


# --- outbound through Twilio's REST API ----------------------------------------------------


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
                log.exception("sending an SMS to %s failed", _masked(to))
            finally:
                queue.task_done()

    async def send(self, to: str, body: str) -> str | None:
        """Send now (with retries); the MessageSid, or None if dropped or failed."""
        if await self._sent_last_hour(to) >= self._cap:
            log.warning(
                "SMS to %s dropped: the cap of %d messages per hour is reached",
                _masked(to),
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
                        _masked(to),
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
                    log.error("could not reach Twilio for an SMS to %s: %r", _masked(to), exc)
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
            log.exception("could not record the delivery of an SMS to %s", _masked(to))


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


# --- the channel in the app ----------------------------------------------------------------


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
    engine = app.state.engine
    if not isinstance(engine, Engine):
        raise TypeError("app.state.engine must be the conversation engine")
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


MAX_INBOUND_CHARS = 1600  # Twilio's longest concatenated message; anything more is not an SMS
TRUNCATED_MARK = " […]"


def capped(body: str) -> str:
    """An inbound body as stored and understood: at most MAX_INBOUND_CHARS, marked if cut."""
    if len(body) <= MAX_INBOUND_CHARS:
        return body
    return body[:MAX_INBOUND_CHARS] + TRUNCATED_MARK


def twiml(text: str | None) -> Response:
    response = MessagingResponse()
    if text:
        response.message(text)
    return Response(content=str(response), media_type="application/xml")


router = APIRouter()


@router.post(INBOUND_PATH, include_in_schema=False)
async def twilio_inbound(request: Request) -> Response:
    """Twilio's incoming-message webhook: the answer is TwiML (empty when none is due)."""
    channel: SmsChannel | None = getattr(request.app.state, "sms", None)
    if channel is None:
        return Response(status_code=404)
    form = await request.form()
    if not channel.signed(request, form):
        return Response(status_code=403)
    body = capped(str(form.get("Body") or ""))
    try:
        phone = to_e164(str(form.get("From") or ""), channel.conversations.default_region)
    except InvalidPhoneNumberError:
        log.info("SMS from an address that is no phone number ignored")
        return twiml(None)
    sid = str(form.get("MessageSid") or form.get("SmsSid") or "") or None
    return twiml(await channel.answer(phone, body, sid))


@router.post(STATUS_PATH, include_in_schema=False)
async def twilio_status(request: Request) -> Response:
    """Delivery status callbacks of the messages we sent."""
    channel: SmsChannel | None = getattr(request.app.state, "sms", None)
    if channel is None:
        return Response(status_code=404)
    form = await request.form()
    if not channel.signed(request, form):
        return Response(status_code=403)
    sid = str(form.get("MessageSid") or form.get("SmsSid") or "")
    status = str(form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    if not sid or not status:
        return Response(status_code=400)
    error = str(form.get("ErrorCode") or "") or None
    await record_status(
        request.app.state.sessions, sid, status, error, to=str(form.get("To") or "") or None
    )
    return Response(status_code=204)


# --- the demo console ----------------------------------------------------------------------


class SmsConsole:
    """`chargebot demo --sms <number>`: the terminal as that phone, through the SMS grammar."""

    def __init__(
        self, conversations: SmsConversations, phone: str, out: TextIO = sys.stdout
    ) -> None:
        self._conversations = conversations
        self._phone = phone
        self._out = out

    def _print(self, text: str) -> None:
        self._out.write(_indented(text) + "\n")
        self._out.flush()

    async def deliver(self, address: str, replies: Sequence[Reply]) -> None:
        """The outbox sender for channel sms: notifications rendered as the SMS would be."""
        text = await self._conversations.outbound(address, replies)
        if text:
            self._print(f"[sms, {segments(text)} segment(s)]\n{text}")

    async def run(self, lines: TextIO = sys.stdin) -> None:
        from bot.adapters.console import _line_reader

        interactive = lines.isatty()
        if interactive:
            self._print("(SMS commands: MENY, LADDA <kod>, AVSLUTA, 1/2 for choices, Ctrl-D)")
        read_line = await _line_reader(lines)
        while True:
            if interactive:
                self._out.write("sms> ")
                self._out.flush()
            line = await read_line()
            if not line:
                return
            if not line.strip():
                continue
            if not interactive:
                self._out.write(f"sms> {line.rstrip()}\n")
            message_id = f"console-{secrets.token_hex(8)}"
            text = await self._conversations.handle(self._phone, line, message_id)
            if is_reserved(line):
                self._print("[a Twilio keyword: Twilio answers it, chargebot stays silent]")
            elif not text and await self._conversations.opted_out(self._phone):
                self._print("[opted out: Twilio delivers nothing to this phone until START]")
            if text:
                self._print(f"[{segments(text)} segment(s)]\n{text}")


def _indented(text: str) -> str:
    return "\n".join(f"bot> {line}" if line else "bot>" for line in text.splitlines())
