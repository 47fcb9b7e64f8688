"""Twilio's webhooks: inbound messages and the delivery status of the messages we sent.

`POST /sms/twilio` is answered with TwiML; `POST /sms/twilio/status` records a status. Both
are 404 while the SMS channel is off and 403 without a valid `X-Twilio-Signature`.
"""

from __future__ import annotations

import logging
from typing import Final

from fastapi import APIRouter, Request, Response
from starlette.datastructures import FormData
from twilio.twiml.messaging_response import MessagingResponse

from backend.services.phones import InvalidPhoneNumberError, to_e164
from bot.adapters.sms.channel import SmsChannel
from bot.adapters.sms.sender import STATUS_PATH, record_status

log = logging.getLogger(__name__)

INBOUND_PATH: Final = "/sms/twilio"
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


async def _signed_form(request: Request) -> tuple[SmsChannel, FormData] | Response:
    """The SMS channel and Twilio's form, or the answer instead: 404 while SMS is off, 403
    for a request Twilio did not sign."""
    channel: SmsChannel | None = getattr(request.app.state, "sms", None)
    if channel is None:
        return Response(status_code=404)
    form = await request.form()
    if not channel.signed(request, form):
        return Response(status_code=403)
    return channel, form


@router.post(INBOUND_PATH, include_in_schema=False)
async def twilio_inbound(request: Request) -> Response:
    """Twilio's incoming-message webhook: the answer is TwiML (empty when none is due)."""
    signed = await _signed_form(request)
    if isinstance(signed, Response):
        return signed
    channel, form = signed
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
    signed = await _signed_form(request)
    if isinstance(signed, Response):
        return signed
    _, form = signed
    sid = str(form.get("MessageSid") or form.get("SmsSid") or "")
    status = str(form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    if not sid or not status:
        return Response(status_code=400)
    error = str(form.get("ErrorCode") or "") or None
    await record_status(
        request.app.state.sessions, sid, status, error, to=str(form.get("To") or "") or None
    )
    return Response(status_code=204)
