"""The lifecycles of a charging session, a payment, a reservation, a queue entry and a
conversation, as transition tables.

Each table says, for every status, which statuses may follow it. Every status change goes
through `Lifecycle.sources` / `Lifecycle.check` (services call them from their one
compare-and-set helper), so a move the table does not allow fails loudly with
`IllegalTransition` instead of writing a row nobody expects. The README draws these tables;
`tests/test_lifecycles.py` pins them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar


class SessionStatus(StrEnum):
    PENDING = "pending"
    STARTING = "starting"
    CHARGING = "charging"
    STOPPING = "stopping"
    COMPLETED = "completed"
    # Closed with implausible meter figures: billed up to the plausible amount until an
    # operator decides (backend/services/plausibility.py).
    NEEDS_REVIEW = "needs_review"
    FAILED = "failed"


class PaymentStatus(StrEnum):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    RELEASED = "released"
    REFUNDED = "refunded"
    FAILED = "failed"


class ReservationStatus(StrEnum):
    REQUESTED = "requested"  # ReserveNow sent, no answer yet
    ACTIVE = "active"  # the charger holds the connector
    USED = "used"  # its id tag started a transaction on it
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REFUSED = "refused"  # the charger said no (Occupied, Faulted, ...) or could not be asked
    # The charger let it go before its expiry: its connector, seen Reserved, reported
    # Available again (cancelled at the charger, or used by a start that did not name it).
    ENDED_BY_CHARGER = "ended_by_charger"


class QueueStatus(StrEnum):
    WAITING = "waiting"  # in line
    OFFERED = "offered"  # a freed connector is held for them, for a few minutes
    CLAIMED = "claimed"  # they started charging on it
    LAPSED = "lapsed"  # they let the offer pass: the next in line is told
    LEFT = "left"  # they left the queue


class ConversationMode(StrEnum):
    BOT = "bot"
    WAITING = "waiting"
    AGENT = "agent"


S = TypeVar("S", bound=StrEnum)


class IllegalTransition(RuntimeError):
    """Code asked for a status change its lifecycle does not allow: a bug, never user input."""


@dataclass(frozen=True)
class Lifecycle(Generic[S]):
    """A transition table: `moves[a]` is every status that may directly follow `a`."""

    name: str
    initial: frozenset[S]  # statuses a new row may be created in
    moves: Mapping[S, frozenset[S]]

    def __post_init__(self) -> None:
        statuses = set(self.moves)
        targets = set().union(*self.moves.values()) | set(self.initial)
        if not targets <= statuses:
            raise ValueError(f"{self.name}: moves to unknown statuses {targets - statuses}")

    @property
    def terminal(self) -> frozenset[S]:
        """Statuses nothing follows."""
        return frozenset(status for status, after in self.moves.items() if not after)

    def allows(self, before: S | str, after: S | str) -> bool:
        return any(s == before and after in targets for s, targets in self.moves.items())

    def sources(self, after: S, only_from: Iterable[S | str] | None = None) -> list[str]:
        """The statuses a row may be in for a compare-and-set to `after`, sorted.

        `only_from` narrows them (a caller that knows more); asking for a move the table does
        not allow raises IllegalTransition.
        """
        allowed = {str(s) for s, targets in self.moves.items() if after in targets}
        if only_from is None:
            if not allowed:
                raise IllegalTransition(f"{self.name}: nothing may become {after}")
            return sorted(allowed)
        asked = {str(s) for s in only_from}
        illegal = asked - allowed
        if illegal or not asked:
            moves = ", ".join(sorted(illegal)) or "(nothing)"
            raise IllegalTransition(f"{self.name}: {moves} -> {after} is not allowed")
        return sorted(asked)

    def check(self, before: S | str, after: S) -> None:
        """Raise IllegalTransition unless `before -> after` is in the table."""
        if not self.allows(before, after):
            raise IllegalTransition(f"{self.name}: {before} -> {after} is not allowed")

    def check_initial(self, status: S | str) -> None:
        if status not in self.initial:
            raise IllegalTransition(f"{self.name}: a new row cannot start as {status}")


_S = SessionStatus
SESSION_LIFECYCLE: Lifecycle[SessionStatus] = Lifecycle(
    name="charging session",
    # A start awaiting a payment is created pending, a direct remote start starting; a
    # charger's own start (RFID) is charging, or failed when its tag is refused.
    initial=frozenset({_S.PENDING, _S.STARTING, _S.CHARGING, _S.FAILED}),
    moves={
        _S.PENDING: frozenset({_S.STARTING, _S.CHARGING, _S.COMPLETED, _S.NEEDS_REVIEW, _S.FAILED}),
        _S.STARTING: frozenset({_S.CHARGING, _S.COMPLETED, _S.NEEDS_REVIEW, _S.FAILED}),
        _S.CHARGING: frozenset({_S.STOPPING, _S.COMPLETED, _S.NEEDS_REVIEW, _S.FAILED}),
        _S.STOPPING: frozenset({_S.CHARGING, _S.COMPLETED, _S.NEEDS_REVIEW, _S.FAILED}),
        _S.NEEDS_REVIEW: frozenset({_S.COMPLETED}),
        _S.COMPLETED: frozenset(),
        _S.FAILED: frozenset(),
    },
)

# A connector has at most one of these (the partial unique index in models.py).
ACTIVE_SESSION_STATUSES: tuple[SessionStatus, ...] = (
    _S.PENDING,
    _S.STARTING,
    _S.CHARGING,
    _S.STOPPING,
)
# Active, but the charger's StartTransaction has not come yet (nothing to stop, no energy).
AWAITING_START_STATUSES: tuple[SessionStatus, ...] = (_S.PENDING, _S.STARTING)
# Active with a transaction on the charger: energy flows, meter values count, a stop applies.
LIVE_SESSION_STATUSES: tuple[SessionStatus, ...] = (_S.CHARGING, _S.STOPPING)
# Ended and billed: a session under meter review is billed its plausible amount until an
# operator decides (backend/services/meter_review.py), then it is completed.
BILLED_SESSION_STATUSES: tuple[SessionStatus, ...] = (_S.COMPLETED, _S.NEEDS_REVIEW)

_P = PaymentStatus
PAYMENT_LIFECYCLE: Lifecycle[PaymentStatus] = Lifecycle(
    name="payment",
    initial=frozenset({_P.PENDING}),
    moves={
        # A checkout hold is authorized, then captured or released; a saved card is captured
        # at once; a refund may be repeated (partial refunds) while money remains.
        _P.PENDING: frozenset({_P.AUTHORIZED, _P.CAPTURED, _P.RELEASED, _P.FAILED}),
        _P.AUTHORIZED: frozenset({_P.CAPTURED, _P.RELEASED}),
        _P.CAPTURED: frozenset({_P.REFUNDED}),
        _P.REFUNDED: frozenset({_P.REFUNDED}),
        _P.RELEASED: frozenset(),
        _P.FAILED: frozenset(),
    },
)

_R = ReservationStatus
RESERVATION_LIFECYCLE: Lifecycle[ReservationStatus] = Lifecycle(
    name="reservation",
    initial=frozenset({_R.REQUESTED}),
    moves={
        _R.REQUESTED: frozenset({_R.ACTIVE, _R.REFUSED}),
        _R.ACTIVE: frozenset({_R.USED, _R.CANCELLED, _R.EXPIRED, _R.ENDED_BY_CHARGER}),
        _R.USED: frozenset(),
        _R.CANCELLED: frozenset(),
        _R.EXPIRED: frozenset(),
        _R.REFUSED: frozenset(),
        _R.ENDED_BY_CHARGER: frozenset(),
    },
)

_Q = QueueStatus
QUEUE_LIFECYCLE: Lifecycle[QueueStatus] = Lifecycle(
    name="queue entry",
    initial=frozenset({_Q.WAITING}),
    moves={
        _Q.WAITING: frozenset({_Q.OFFERED, _Q.LEFT}),
        _Q.OFFERED: frozenset({_Q.CLAIMED, _Q.LAPSED, _Q.LEFT}),
        _Q.CLAIMED: frozenset(),
        _Q.LAPSED: frozenset(),
        _Q.LEFT: frozenset(),
    },
)
# A driver has at most one of these at a time (checked when they join).
QUEUED_STATUSES: tuple[QueueStatus, ...] = (_Q.WAITING, _Q.OFFERED)

_C = ConversationMode
CONVERSATION_LIFECYCLE: Lifecycle[ConversationMode] = Lifecycle(
    name="conversation",
    initial=frozenset({_C.BOT}),
    moves={
        _C.BOT: frozenset({_C.WAITING}),  # escalated: into the support queue
        _C.WAITING: frozenset({_C.AGENT}),  # claimed by an agent
        # re-claimed by its holder, or handed back to the bot (released or closed)
        _C.AGENT: frozenset({_C.AGENT, _C.BOT}),
    },
)


def sql_in(statuses: Iterable[StrEnum]) -> str:
    """`'a', 'b'` for a SQL `IN (...)` built from the same constant the code uses."""
    return ", ".join(f"'{status.value}'" for status in statuses)
