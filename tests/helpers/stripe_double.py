"""A stand-in for the Stripe endpoints we call, at stripe-python's network boundary, and a signer.

`RecordingStripeClient` is a `stripe.HTTPClient`: the real `stripe.StripeClient` builds every
request as usual (form-encoded body, `Idempotency-Key` header) and hands it to
`request_async` (or `request`), which records it and answers with the JSON Stripe would send.
Like Stripe it replays the stored answer for a repeated idempotency key, refuses a capture
above the amount capturable, a cancel of a captured intent and a refund above what is left.

`signed` signs a webhook body the way Stripe does: header `t=<unix time>,v1=<hex HMAC-SHA256
of "<t>.<body>" under the endpoint secret>`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe

API_KEY = "sk_test_0123456789abcdefghijklmnop"
WEBHOOK_SECRET = "whsec_test_0123456789abcdefghijklmnop"
_ids = itertools.count(1)


@dataclass
class StripeCall:
    method: str
    path: str
    params: dict[str, str]
    idempotency_key: str | None


class RecordingStripeClient(stripe.HTTPClient):
    """Records every API call in `calls`; keeps checkout sessions, intents and refunds."""

    name = "recording-double"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[StripeCall] = []
        self.checkout_sessions: dict[str, dict[str, Any]] = {}
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: list[dict[str, Any]] = []
        self.customers: dict[str, dict[str, Any]] = {}
        self.setup_intents: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}  # set up by the tests
        self.declined_methods: set[str] = set()  # off-session charges on these are declined
        self.unavailable = False  # True: every call fails as a Stripe outage does (HTTP 500)
        self._answers: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()

    # -- stripe.HTTPClient ------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        body, status = self._answer(method, url, headers or {}, post_data)
        return body, status, {"Content-Type": "application/json"}

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        body, status = self._answer(method, url, headers, post_data)
        return body.encode(), status, {"Content-Type": "application/json"}

    async def sleep_async(self, secs: float) -> None:
        return None

    def close(self) -> None:
        return None

    async def close_async(self) -> None:
        return None

    # -- the fake API -----------------------------------------------------------------------

    def _answer(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> tuple[str, int]:
        split = urlsplit(url)
        raw = post_data.decode() if isinstance(post_data, bytes) else (post_data or split.query)
        params = dict(parse_qsl(raw or "", keep_blank_values=True))
        key = next((v for k, v in headers.items() if k.lower() == "idempotency-key"), None)
        with self._lock:
            self.calls.append(StripeCall(method.upper(), split.path, params, key))
            if self.unavailable:
                return _error(500, "api_error", "Stripe is having a bad day")
            if key is not None and method.upper() == "POST" and key in self._answers:
                return self._answers[key]
            answer = self._route(method.upper(), split.path, params)
            if key is not None and method.upper() == "POST":
                self._answers[key] = answer
            return answer

    def _route(self, method: str, path: str, params: dict[str, str]) -> tuple[str, int]:
        parts = path.strip("/").split("/")
        if method == "POST" and parts == ["v1", "checkout", "sessions"]:
            return self._create_checkout(params)
        if method == "POST" and parts[:3] == ["v1", "checkout", "sessions"] and len(parts) == 5:
            found = self.checkout_sessions.get(parts[3])
            if found is None:
                return _error(404, "resource_missing", "No such checkout.session")
            if found["status"] != "open":
                return _error(400, "checkout_session_not_open", "Only open sessions expire")
            found["status"] = "expired"
            return _ok(found)
        if method == "POST" and parts == ["v1", "customers"]:
            customer: dict[str, Any] = {"id": f"cus_test_{next(_ids):06d}", "object": "customer"}
            customer.update(name=params.get("name"), metadata=_nested(params, "metadata"))
            self.customers[customer["id"]] = customer
            return _ok(customer)
        if method == "GET" and parts[:2] == ["v1", "setup_intents"] and len(parts) == 3:
            found = self.setup_intents.get(parts[2])
            if found is None:
                return _error(404, "resource_missing", "No such setup_intent")
            return _ok(found)
        if method == "GET" and parts[:2] == ["v1", "subscriptions"] and len(parts) == 3:
            subscription = self.subscriptions.get(parts[2])
            if subscription is None:
                return _error(404, "resource_missing", "No such subscription")
            return _ok(subscription)
        if method == "POST" and parts == ["v1", "payment_intents"]:
            return self._charge(params)
        if parts[:2] == ["v1", "payment_intents"] and len(parts) >= 3:
            intent = self.intents.get(parts[2])
            if intent is None:
                return _error(404, "resource_missing", f"No such payment_intent: '{parts[2]}'")
            if method == "GET" and len(parts) == 3:
                return _ok(intent)
            if method == "POST" and parts[3:] == ["capture"]:
                return self._capture(intent, params)
            if method == "POST" and parts[3:] == ["cancel"]:
                return self._cancel(intent)
        if method == "POST" and parts == ["v1", "refunds"]:
            return self._refund(params)
        return _error(404, "resource_missing", f"Unrecognized request URL ({method} {path})")

    def _create_checkout(self, params: dict[str, str]) -> tuple[str, int]:
        cs_id = f"cs_test_{next(_ids):06d}"
        session = {
            "id": cs_id,
            "object": "checkout.session",
            "mode": params.get("mode"),
            "status": "open",
            "payment_status": "unpaid",
            "client_reference_id": params.get("client_reference_id"),
            "metadata": _nested(params, "metadata"),
            "amount_total": int(params.get("line_items[0][price_data][unit_amount]", "0")),
            "currency": params.get("line_items[0][price_data][currency]"),
            "expires_at": int(params.get("expires_at", "0")),
            "payment_intent": None,
            "customer": params.get("customer"),
            "setup_intent": None,
            "url": f"https://checkout.stripe.com/c/pay/{cs_id}",
        }
        self.checkout_sessions[cs_id] = session
        return _ok(session)

    def _charge(self, params: dict[str, str]) -> tuple[str, int]:
        if params.get("customer") not in self.customers:
            return _error(400, "resource_missing", "No such customer")
        pi_id = f"pi_test_{next(_ids):06d}"
        amount = int(params["amount"])
        declined = params.get("payment_method") in self.declined_methods
        intent = {
            "id": pi_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0 if declined else amount,
            "currency": params.get("currency"),
            "customer": params.get("customer"),
            "payment_method": params.get("payment_method"),
            "status": "requires_payment_method" if declined else "succeeded",
            "metadata": _nested(params, "metadata"),
        }
        self.intents[pi_id] = intent
        if declined:
            body = {
                "error": {
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": "insufficient_funds",
                    "message": "Your card has insufficient funds.",
                    "payment_intent": intent,
                }
            }
            return json.dumps(body), 402
        return _ok(intent)

    def _capture(self, intent: dict[str, Any], params: dict[str, str]) -> tuple[str, int]:
        if intent["status"] != "requires_capture":
            return _error(400, "payment_intent_unexpected_state", "Cannot capture")
        amount = int(params.get("amount_to_capture", intent["amount_capturable"]))
        if amount > intent["amount_capturable"]:
            return _error(400, "amount_too_large", "Amount to capture exceeds capturable")
        intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
        return _ok(intent)

    def _cancel(self, intent: dict[str, Any]) -> tuple[str, int]:
        if intent["status"] in {"succeeded", "canceled"}:
            return _error(400, "payment_intent_unexpected_state", "Cannot cancel")
        intent.update(status="canceled", amount_capturable=0)
        return _ok(intent)

    def _refund(self, params: dict[str, str]) -> tuple[str, int]:
        intent = self.intents.get(params.get("payment_intent", ""))
        if intent is None or intent["status"] != "succeeded":
            return _error(400, "charge_not_refundable", "Nothing to refund")
        left = intent["amount_received"] - intent.get("amount_refunded", 0)
        amount = int(params.get("amount", left))
        if amount > left:
            return _error(400, "charge_exceeds_source_limit", "Refund exceeds the charge")
        intent["amount_refunded"] = intent.get("amount_refunded", 0) + amount
        refund = {
            "id": f"re_test_{next(_ids):06d}",
            "object": "refund",
            "amount": amount,
            "payment_intent": intent["id"],
            "status": "succeeded",
        }
        self.refunds.append(refund)
        return _ok(refund)

    # -- what the customer does on the payment page -------------------------------------------

    def pay(self, cs_id: str, status: str = "requires_capture") -> dict[str, Any]:
        """The driver pays: an intent holds the amount; returns the completed session object."""
        with self._lock:
            session = self.checkout_sessions[cs_id]
            pi_id = f"pi_test_{next(_ids):06d}"
            amount = session["amount_total"]
            self.intents[pi_id] = {
                "id": pi_id,
                "object": "payment_intent",
                "amount": amount,
                "amount_capturable": amount if status == "requires_capture" else 0,
                "amount_received": 0,
                "capture_method": "manual",
                "currency": session["currency"],
                "status": status,
                "metadata": session["metadata"],
            }
            session.update(status="complete", payment_intent=pi_id)
            return dict(session)

    def save_card(self, cs_id: str) -> dict[str, Any]:
        """The driver completes a setup-mode page: a SetupIntent with a card; the session."""
        with self._lock:
            session = self.checkout_sessions[cs_id]
            seti_id = f"seti_test_{next(_ids):06d}"
            self.setup_intents[seti_id] = {
                "id": seti_id,
                "object": "setup_intent",
                "status": "succeeded",
                "customer": session["customer"],
                "payment_method": f"pm_test_{next(_ids):06d}",
                "usage": "off_session",
            }
            session.update(status="complete", setup_intent=seti_id)
            return dict(session)

    def expire(self, cs_id: str) -> dict[str, Any]:
        with self._lock:
            session = self.checkout_sessions[cs_id]
            session["status"] = "expired"
            return dict(session)

    def posts(self, path_suffix: str) -> list[StripeCall]:
        with self._lock:
            return [c for c in self.calls if c.method == "POST" and c.path.endswith(path_suffix)]


def _nested(params: dict[str, str], name: str) -> dict[str, str]:
    prefix = f"{name}["
    return {k[len(prefix) : -1]: v for k, v in params.items() if k.startswith(prefix)}


def _ok(obj: dict[str, Any]) -> tuple[str, int]:
    return json.dumps(obj), 200


def _error(status: int, code: str, message: str) -> tuple[str, int]:
    return json.dumps(
        {"error": {"type": "invalid_request_error", "code": code, "message": message}}
    ), status


def event(kind: str, obj: dict[str, Any], event_id: str | None = None) -> bytes:
    """A webhook body as Stripe sends it."""
    body = {
        "id": event_id or f"evt_test_{next(_ids):06d}",
        "object": "event",
        "api_version": stripe.api_version,
        "created": int(time.time()),
        "livemode": False,
        "type": kind,
        "data": {"object": obj},
    }
    return json.dumps(body).encode()


def signed(
    body: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """The Stripe-Signature header for `body`, computed as Stripe computes it."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={mac}", "Content-Type": "application/json"}
