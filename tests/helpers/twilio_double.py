"""A stand-in for Twilio's REST API at twilio-python's network boundary, and a webhook signer.

`RecordingTwilioClient` is a `twilio.http.HttpClient`: the real `twilio.rest.Client` builds
every API call as usual and hands it to `request`, which records it and answers with the JSON
Twilio would send (a Message resource, 201), or with an error Twilio can answer (queued with
`fail_next`). Like Twilio it refuses a message without a body, without a sender or to an
invalid number. Nothing touches the network.

`signed_post_args` signs a webhook the way Twilio does, with the real `RequestValidator`.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "test-twilio-auth-token-0123456789"
FROM_NUMBER = "+46766862334"
_sids = itertools.count(1)


@dataclass
class SentMessage:
    sid: str
    to: str
    body: str
    sender: str
    status_callback: str | None
    auth: tuple[str, str] | None


# twilio ships no type information (no py.typed): its HttpClient is Any to mypy.
class RecordingTwilioClient(HttpClient):  # type: ignore[misc]
    """Records every REST call in `calls`; sent messages in `messages`."""

    def __init__(self) -> None:
        super().__init__(logger=None, is_async=False)
        self.calls: list[dict[str, Any]] = []
        self.messages: list[SentMessage] = []
        self._failures: deque[tuple[int, int]] = deque()
        self._lock = threading.Lock()

    def fail_next(self, times: int = 1, status: int = 500, code: int = 20500) -> None:
        """The next `times` requests are answered with HTTP `status`."""
        with self._lock:
            self._failures.extend([(status, code)] * times)

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        with self._lock:
            self.calls.append({"method": method, "uri": uri, "data": dict(data or {})})
            if self._failures:
                status, code = self._failures.popleft()
                return _error(status, code, "Service unavailable" if status >= 500 else "Error")
        if method == "POST" and uri.endswith("/Messages.json"):
            return self._create_message(dict(data or {}), auth)
        return _error(404, 20404, "The requested resource was not found")

    def _create_message(self, data: dict[str, object], auth: tuple[str, str] | None) -> Response:
        to = str(data.get("To") or "")
        body = str(data.get("Body") or "")
        sender = str(data.get("From") or data.get("MessagingServiceSid") or "")
        if not to.startswith("+") or not to[1:].isdigit():
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not body:
            return _error(400, 21602, "Message body is required.")
        if not sender:
            return _error(400, 21603, "The 'From' phone number is required.")
        sid = f"SM{next(_sids):06d}{secrets.token_hex(13)}"
        callback = data.get("StatusCallback")
        message = SentMessage(sid, to, body, sender, str(callback) if callback else None, auth)
        with self._lock:
            self.messages.append(message)
        payload = {
            "sid": sid,
            "account_sid": ACCOUNT_SID,
            "to": to,
            "from": data.get("From"),
            "messaging_service_sid": data.get("MessagingServiceSid"),
            "body": body,
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
        }
        return Response(201, json.dumps(payload))

    def bodies_to(self, to: str) -> list[str]:
        with self._lock:
            return [m.body for m in self.messages if m.to == to]


def _error(status: int, code: int, message: str) -> Response:
    payload = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Response(status, json.dumps(payload))


def signature(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """X-Twilio-Signature as Twilio computes it."""
    return str(RequestValidator(token).compute_signature(url, params))
