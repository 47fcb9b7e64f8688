"""Domain events and the in-process bus that carries them to subscribers (the notifier)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionEvent:
    session_id: int
    driver_id: int | None
    channel: str | None


@dataclass(frozen=True)
class SessionStarted(SessionEvent):
    """The charger sent StartTransaction: energy can flow."""


@dataclass(frozen=True)
class SessionFailed(SessionEvent):
    reason: str


@dataclass(frozen=True)
class ChargingFinished(SessionEvent):
    """The car stopped drawing power; the session is still open (idle time may start)."""


@dataclass(frozen=True)
class SessionProgress(SessionEvent):
    """New meter values on a live session (for live status displays)."""

    energy_wh: int
    power_w: float | None


@dataclass(frozen=True)
class IdleFeeSoon(SessionEvent):
    minutes: int


@dataclass(frozen=True)
class SessionCompleted(SessionEvent):
    cost_minor: int | None
    energy_wh: int


@dataclass(frozen=True)
class SessionNeedsReview(SessionEvent):
    """A session ended with implausible meter figures: billed up to `energy_wh` (plausible),
    the charger claimed `measured_energy_wh`; an operator decides (published after the
    session's SessionCompleted, which carries the plausible cost)."""

    measured_energy_wh: int
    energy_wh: int
    reason: str


@dataclass(frozen=True)
class SessionReviewed(SessionEvent):
    """An operator decided on a session under meter review: it is billed `cost_minor` for
    `energy_wh`; `uncollected_minor` of that its card payment did not take (staff follow up)."""

    energy_wh: int
    cost_minor: int
    uncollected_minor: int


@dataclass(frozen=True)
class PaymentCaptured(SessionEvent):
    """The session's card payment was taken; `uncollected_minor` is cost above the hold."""

    amount_minor: int
    uncollected_minor: int


@dataclass(frozen=True)
class PaymentProblem(SessionEvent):
    """Money for the session we could not take as planned; support follows it up.

    `problem`: `charge_refused` (the saved card was declined), `capture_refused` (Stripe
    refused to capture the hold) or `uncollected` (the cost was above the hold). For
    `uncollected`, `taken_minor` is what was captured and `owed_minor` what is still owed.
    """

    problem: str
    taken_minor: int = 0
    owed_minor: int = 0


@dataclass(frozen=True)
class HoldCapReached(SessionEvent):
    """A pay-per-session charge is being stopped: its cost is about to pass the card hold."""

    hold_minor: int
    cost_minor: int


DomainEvent = SessionEvent
Subscriber = Callable[[DomainEvent], Awaitable[None]]


class EventBus:
    """Publishes events to every subscriber; a failing subscriber never breaks the publisher.

    With Redis (scale-out), events that happened in another process are published here
    with `remote=True`; subscribers registered `local_only` (the notifier, the Redis
    forwarder) see only this process's own events, so a driver is told once.
    """

    def __init__(self) -> None:
        self._subscribers: list[tuple[Subscriber, bool]] = []

    def subscribe(self, subscriber: Subscriber, *, local_only: bool = False) -> None:
        self._subscribers.append((subscriber, local_only))

    async def publish(self, event: DomainEvent, *, remote: bool = False) -> None:
        for subscriber, local_only in list(self._subscribers):
            if remote and local_only:
                continue
            try:
                await subscriber(event)
            except Exception:
                log.exception("subscriber %r failed on %r", subscriber, event)
