"""SMS through Twilio: the inbound webhook, numbered choices, pages, and outbound REST sends.

One job per module:

* `grammar`: what an SMS body is before the engine reads it (Twilio's keywords, MER/MORE).
* `text`: plain GSM-7, segment counting and pages of at most three segments.
* `conversations`: `SmsConversations`, the channel's logic without HTTP (opt-outs, pages,
  numbered choices); the demo console (`bot/adapters/console.py`) uses it directly.
* `sender`: `TwilioSender`, outbound messages through Twilio's REST client with retries and
  a per-number hourly cap, and `record_status`, each message's delivery status.
* `channel`: `SmsChannel`, the channel in the app (signature check, answers in time or by
  REST, the outbox's sender), and `start_sms`/`stop_sms`.
* `webhook`: the routes `POST /sms/twilio` and `POST /sms/twilio/status`.

The names below are this package's public ones: `from bot.adapters.sms import X`.
"""

from __future__ import annotations

from bot.adapters.sms.channel import (
    SIGNATURE_HEADER,
    SmsChannel,
    start_sms,
    stop_sms,
)
from bot.adapters.sms.conversations import (
    CHANNEL,
    DEDUPE_SOURCE,
    OPTED_OUT,
    SmsConversations,
    render,
)
from bot.adapters.sms.sender import (
    RETRY_FIRST,
    SEND_ATTEMPTS,
    SEND_WORKERS,
    STATUS_PATH,
    STATUS_RANK,
    TwilioSender,
    record_status,
)
from bot.adapters.sms.webhook import (
    INBOUND_PATH,
    MAX_INBOUND_CHARS,
    TRUNCATED_MARK,
    capped,
    router,
    twilio_inbound,
    twilio_status,
    twiml,
)

__all__ = [
    "CHANNEL",
    "DEDUPE_SOURCE",
    "INBOUND_PATH",
    "MAX_INBOUND_CHARS",
    "OPTED_OUT",
    "RETRY_FIRST",
    "SEND_ATTEMPTS",
    "SEND_WORKERS",
    "SIGNATURE_HEADER",
    "STATUS_PATH",
    "STATUS_RANK",
    "TRUNCATED_MARK",
    "SmsChannel",
    "SmsConversations",
    "TwilioSender",
    "capped",
    "record_status",
    "render",
    "router",
    "start_sms",
    "stop_sms",
    "twilio_inbound",
    "twilio_status",
    "twiml",
]
