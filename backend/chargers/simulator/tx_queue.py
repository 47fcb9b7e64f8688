"""Transaction messages (OCPP 1.6 §4.x): delivered in order, retried, kept across disconnects."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ocpp.exceptions import OCPPError


@dataclass(slots=True, eq=False)
class TxMessage:
    """A queued transaction-related message: delivered in order, retried (OCPP 1.6 §4.x)."""

    action: str
    build: Callable[[], Any]  # the payload when sent; None: its transaction never got an id
    on_result: Callable[[Any], None] | None = None  # the CALLRESULT, or None if dropped
    attempts: int = 0
    tried: asyncio.Event = field(default_factory=asyncio.Event)  # first attempt made, or offline

    def finish(self, result: Any) -> None:
        self.tried.set()
        if self.on_result is not None:
            self.on_result(result)


class TransactionQueue:
    """Start/StopTransaction and transaction MeterValues in order; lives as long as the charger.

    `deliver()` runs on one booted connection (the charge point starts it as `worker`); a
    message queued while it does not run is sent after the next accepted BootNotification.
    """

    def __init__(
        self,
        charge_point_id: str,
        logger: logging.Logger,
        attempts: int,
        retry_interval: float,
        outcomes: list[tuple[str, int, str]],
    ) -> None:
        self.attempts = attempts  # TransactionMessageAttempts, read after every failure
        self.retry_interval = retry_interval  # TransactionMessageRetryInterval, in seconds
        # (action, attempt number, outcome) of every attempt: "accepted", the CALLERROR code,
        # "Timeout", "disconnected" (not counted) or "dropped".
        self.outcomes = outcomes
        self.worker: asyncio.Task[Any] | None = None  # delivers while booted
        self._id = charge_point_id
        self._log = logger
        self._messages: deque[TxMessage] = deque()
        self._wakeup = asyncio.Event()

    @property
    def actions(self) -> list[str]:
        """Actions of the messages not yet delivered, oldest first."""
        return [message.action for message in self._messages]

    def enqueue(self, message: TxMessage) -> TxMessage:
        self._messages.append(message)
        if self.worker is None or self.worker.done():
            message.tried.set()  # offline: sent after the next BootNotification is accepted
        self._wakeup.set()
        return message

    async def deliver(self, call: Callable[[Any], Awaitable[Any]]) -> None:
        """Send the queue head until answered or out of attempts, then the next (one booted link).

        A CALLERROR or no answer is an attempt: wait TransactionMessageRetryInterval x attempts
        so far, give up after TransactionMessageAttempts. A lost connection (`call` raises
        ConnectionError) is no attempt: the message stays first and goes out after the
        reconnect.
        """
        queue = self._messages
        try:
            while True:
                if not queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                message = queue[0]
                payload = message.build()
                if payload is None:
                    queue.popleft()
                    self._drop(message, "its transaction never got an id")
                    continue
                try:
                    result = await call(payload)
                except ConnectionError:
                    self.outcomes.append((message.action, message.attempts + 1, "disconnected"))
                    return
                except (OCPPError, TimeoutError) as exc:
                    message.attempts += 1
                    outcome = exc.code if isinstance(exc, OCPPError) else "Timeout"
                    self.outcomes.append((message.action, message.attempts, outcome))
                    message.tried.set()
                    if message.attempts >= self.attempts:
                        queue.popleft()
                        self._drop(message, f"{message.attempts} attempts failed ({outcome})")
                        continue
                    delay = self.retry_interval * message.attempts
                    self._log.warning(  # the outcome, not the error: its text quotes the frame
                        "%s: %s attempt %d failed (%s); retrying in %gs",
                        self._id,
                        message.action,
                        message.attempts,
                        outcome,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                queue.popleft()
                message.attempts += 1
                self.outcomes.append((message.action, message.attempts, "accepted"))
                message.finish(result)
        finally:
            for waiting in queue:
                waiting.tried.set()  # nobody waits for a link that is gone

    def _drop(self, message: TxMessage, why: str) -> None:
        self._log.error("%s: %s dropped: %s", self._id, message.action, why)
        self.outcomes.append((message.action, message.attempts, "dropped"))
        message.finish(None)
