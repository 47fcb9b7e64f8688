"""Exponential back-off for failed staff logins, per account and per client address.

The rule (`BackoffRule`): the first few failures are free; each failure after that locks the
key for twice as long as the one before (1 s, 2 s, 4 s ... capped at 15 minutes). A locked
key is answered "try again in N seconds" without looking at the password, and refused
attempts do not count. A successful login clears its account's counter (not its address's:
one valid account must not buy an address unlimited guesses at the others). A key with no
failure for `forget_after` seconds starts afresh.

An attempt counts as a failure before its password is checked (`LoginThrottle.begin`), and is
given back when the password was right or never checked (`LoginThrottle.give_back`). So a burst
of parallel guesses gets no more checks than the same guesses sent one after another: once the
free failures are used up, the attempt that takes the next one locks the key for the rest
before its own check has even started.

Accounts (5 free failures) are keyed by the normalized email whether or not the account
exists, so a lock says nothing about which emails are real. Addresses get 20, since one office
behind NAT shares one address. The price of the account lock: someone who knows a staff email
can keep that account locked (each further failure doubles the wait, up to 15 minutes), which
is accepted over unlimited guessing. The address is `request.client.host`: behind a proxy,
run with FORWARDED_ALLOW_IPS naming it, or every login counts against the proxy's address.

Counters live in this process's memory (`MemoryCounters`, bounded in size), or in Redis when
REDIS_URL is set (`RedisCounters`), so that every web process of a scale-out counts the same
failures. With memory counters and N processes an attacker gets up to N times the allowance.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

Clock = Callable[[], float]  # seconds; wall-clock time (Redis counters are shared by hosts)


@dataclass(frozen=True)
class BackoffRule:
    free_failures: int = 5
    first_lock: float = 1.0  # seconds
    max_lock: float = 15 * 60.0
    forget_after: float = 60 * 60.0  # seconds without a failure

    def lock_after(self, failures: int) -> float:
        """Seconds a key is locked right after its `failures`-th consecutive failure."""
        if failures < self.free_failures:
            return 0.0
        exponent = min(failures - self.free_failures, 30)
        return float(min(self.first_lock * 2**exponent, self.max_lock))


ACCOUNT_RULE = BackoffRule(free_failures=5)
ADDRESS_RULE = BackoffRule(free_failures=20)


class Counters(Protocol):
    """Where failure counts and locks are kept (the throttle's only state)."""

    async def locked_until(self, key: str) -> float: ...

    async def failed(self, key: str, now: float, rule: BackoffRule) -> None: ...

    async def clear(self, key: str) -> None: ...

    async def reserve(self, key: str, now: float, rule: BackoffRule) -> Reservation:
        """In one atomic step: refused while locked (nothing counted), else one failure more."""
        ...

    async def give_back(self, key: str, reservation: Reservation) -> None:
        """Undo a granted `reserve`: one failure less, and its lock lifted if still in place."""
        ...


@dataclass(frozen=True)
class Reservation:
    """The answer of `Counters.reserve`.

    Granted: one failure was counted; `previous` is the key's lock before it and `lock` the one
    after it (the same when it set none), both as stored, for `give_back`. Refused: `lock` is
    the lock in the way. Empty strings: nothing was stored (the store was unavailable).
    """

    granted: bool
    lock: str = "0"
    previous: str = "0"

    @property
    def locked_until(self) -> float:
        return float(self.lock or 0.0)


@dataclass
class _Entry:
    failures: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


class MemoryCounters:
    """Counters of this process; beyond `max_keys`, the least recently failed keys go."""

    def __init__(self, max_keys: int = 50_000) -> None:
        self._max_keys = max_keys
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    async def locked_until(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry.locked_until if entry is not None else 0.0

    async def failed(self, key: str, now: float, rule: BackoffRule) -> None:
        entry = self._entries.pop(key, None)
        if entry is None or now - entry.last_failure > rule.forget_after:
            entry = _Entry()
        entry.failures += 1
        entry.last_failure = now
        lock = rule.lock_after(entry.failures)
        if lock:
            entry.locked_until = now + lock
        self._entries[key] = entry  # the most recent last
        while len(self._entries) > self._max_keys:
            self._entries.popitem(last=False)

    async def clear(self, key: str) -> None:
        self._entries.pop(key, None)

    async def reserve(self, key: str, now: float, rule: BackoffRule) -> Reservation:
        # Atomic for the event loop: nothing in here suspends (`failed` never awaits).
        entry = self._entries.get(key)
        if entry is not None and entry.locked_until > now:
            return Reservation(granted=False, lock=repr(entry.locked_until))
        previous = repr(entry.locked_until) if entry is not None else "0"
        await self.failed(key, now, rule)
        lock = repr(self._entries[key].locked_until)
        return Reservation(granted=True, lock=lock, previous=previous)

    async def give_back(self, key: str, reservation: Reservation) -> None:
        entry = self._entries.get(key)
        if entry is None or not reservation.granted:  # cleared meanwhile, or nothing counted
            return
        entry.failures = max(0, entry.failures - 1)
        if repr(entry.locked_until) == reservation.lock:  # no later attempt locked it since
            entry.locked_until = float(reservation.previous)


# The same two steps for Redis, each one atomic script on the key's hash (KEYS[1]).
_RESERVE = """
local now = tonumber(ARGV[1])
local previous = redis.call('HGET', KEYS[1], 'locked_until') or '0'
if tonumber(previous) > now then
  return {0, previous, previous}
end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local free = tonumber(ARGV[2])
local lock = previous
if failures >= free then
  local seconds = tonumber(ARGV[3]) * 2 ^ math.min(failures - free, 30)
  lock = tostring(now + math.min(seconds, tonumber(ARGV[4])))
  redis.call('HSET', KEYS[1], 'locked_until', lock)
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
return {1, lock, previous}
"""
_GIVE_BACK = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
if redis.call('HINCRBY', KEYS[1], 'failures', -1) < 0 then
  redis.call('HSET', KEYS[1], 'failures', 0)
end
if redis.call('HGET', KEYS[1], 'locked_until') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'locked_until', ARGV[2])
end
return 1
"""


class RedisCounters:
    """Counters shared by every process through Redis; a Redis failure never blocks a login."""

    def __init__(self, url: str, prefix: str) -> None:
        self._redis: aioredis.Redis = aioredis.from_url(url, decode_responses=True)
        self._prefix = f"{prefix}login:"

    def _key(self, key: str) -> str:
        return self._prefix + key

    async def locked_until(self, key: str) -> float:
        try:
            value = await self._redis.hget(self._key(key), "locked_until")
        except RedisError as exc:
            log.warning("login throttle: Redis unavailable (%s); not throttling", exc)
            return 0.0
        return float(value or 0.0)

    async def failed(self, key: str, now: float, rule: BackoffRule) -> None:
        name = self._key(key)
        try:
            failures = int(await self._redis.hincrby(name, "failures", 1))
            lock = rule.lock_after(failures)
            async with self._redis.pipeline(transaction=True) as pipe:
                if lock:
                    pipe.hset(name, "locked_until", repr(now + lock))
                pipe.expire(name, math.ceil(rule.forget_after))
                await pipe.execute()
        except RedisError as exc:
            log.warning("login throttle: Redis unavailable (%s); failure not counted", exc)

    async def clear(self, key: str) -> None:
        try:
            await self._redis.delete(self._key(key))
        except RedisError as exc:
            log.warning("login throttle: Redis unavailable (%s); counter not cleared", exc)

    async def reserve(self, key: str, now: float, rule: BackoffRule) -> Reservation:
        try:
            granted, lock, previous = await self._redis.eval(
                _RESERVE,
                1,
                self._key(key),
                repr(now),
                str(rule.free_failures),
                repr(rule.first_lock),
                repr(rule.max_lock),
                str(math.ceil(rule.forget_after)),
            )
        except RedisError as exc:
            log.warning("login throttle: Redis unavailable (%s); not throttling", exc)
            return Reservation(granted=True, lock="", previous="")
        return Reservation(granted=bool(granted), lock=str(lock), previous=str(previous))

    async def give_back(self, key: str, reservation: Reservation) -> None:
        if not reservation.granted or not reservation.lock:  # nothing was counted
            return
        try:
            await self._redis.eval(
                _GIVE_BACK, 1, self._key(key), reservation.lock, reservation.previous
            )
        except RedisError as exc:
            log.warning("login throttle: Redis unavailable (%s); attempt not given back", exc)

    async def close(self) -> None:
        await self._redis.aclose()


@dataclass(frozen=True)
class Attempt:
    """What `LoginThrottle.begin` answers: wait `retry_after` s, or (0) go ahead."""

    retry_after: int
    _account: tuple[str, Reservation] | None = None
    _address: tuple[str, Reservation] | None = None


class LoginThrottle:
    """Counts a login before its password check (`begin`) and is told if it was no failure.

    `retry_after`, `failed` and `succeeded` are the parts of the same rule, one by one.
    """

    def __init__(
        self,
        counters: Counters | None = None,
        *,
        clock: Clock = time.time,
        account_rule: BackoffRule = ACCOUNT_RULE,
        address_rule: BackoffRule = ADDRESS_RULE,
    ) -> None:
        self._clock = clock
        self._counters = counters if counters is not None else MemoryCounters()
        self._account_rule = account_rule
        self._address_rule = address_rule

    @staticmethod
    def _account_key(email: str) -> str:
        # Hashed: no email addresses in Redis, and a bounded key length for any input.
        digest = hashlib.sha256(email.strip().lower().encode("utf-8", "replace")).hexdigest()
        return f"account:{digest[:32]}"

    @staticmethod
    def _address_key(address: str) -> str:
        return f"address:{address[:64]}"

    async def retry_after(self, email: str, address: str) -> int:
        """Whole seconds until this email may be tried from this address; 0: go ahead."""
        now = self._clock()
        until = max(
            await self._counters.locked_until(self._account_key(email)),
            await self._counters.locked_until(self._address_key(address)),
        )
        return max(0, math.ceil(until - now))

    async def begin(self, email: str, address: str) -> Attempt:
        """An attempt to check a password of this email from this address.

        `retry_after` > 0: locked, nothing is counted, check nothing. 0: go ahead; the attempt
        already counts as a failure of the account and of the address (in one atomic step
        with the lock check, so parallel attempts cannot all slip past a lock). Call
        `give_back` when the password was right or was never checked.
        """
        now = self._clock()
        account_key, address_key = self._account_key(email), self._address_key(address)
        account = await self._counters.reserve(account_key, now, self._account_rule)
        if not account.granted:
            return Attempt(max(1, math.ceil(account.locked_until - now)))
        address_ = await self._counters.reserve(address_key, now, self._address_rule)
        if not address_.granted:
            await self._counters.give_back(account_key, account)
            return Attempt(max(1, math.ceil(address_.locked_until - now)))
        return Attempt(0, (account_key, account), (address_key, address_))

    async def give_back(self, attempt: Attempt) -> None:
        """The attempt `begin` let through was no failure: it no longer counts."""
        for counted in (attempt._address, attempt._account):
            if counted is not None:
                await self._counters.give_back(*counted)

    async def failed(self, email: str, address: str) -> None:
        now = self._clock()
        await self._counters.failed(self._account_key(email), now, self._account_rule)
        await self._counters.failed(self._address_key(address), now, self._address_rule)

    async def succeeded(self, email: str, address: str) -> None:
        await self._counters.clear(self._account_key(email))

    async def close(self) -> None:
        if isinstance(self._counters, RedisCounters):
            await self._counters.close()


def client_address(host: str | None) -> str:
    """The address a login is counted against: `request.client.host`.

    Behind a proxy that is the proxy's address unless uvicorn trusts it to forward the
    client's (`chargebot serve` passes `proxy_headers=True`, FORWARDED_ALLOW_IPS: the
    proxies whose X-Forwarded-For is believed; default 127.0.0.1).
    """
    return host or "unknown"
