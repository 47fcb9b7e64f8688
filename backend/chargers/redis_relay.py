"""Scale-out over Redis: charger leases, commands to the process holding a socket, events.

Used only when REDIS_URL is set; without it the in-process `LocalChargerCommands` is the
whole story. Key layout (every key and channel starts with REDIS_KEY_PREFIX):

- `charger:<id>:holder` = "<process id>/<connection id>" of the socket holding that charger,
  with a lease (`SET ... PX lease`), renewed every lease/3, deleted on disconnect only if it
  is still that connection's (a reconnect to the same process must not lose its lease).
- `process:<pid>` = one pub/sub channel per process: command requests, their replies and
  "drop your stale socket" notices, told apart by `kind`.
- `events` = domain events; every process re-publishes others' events on its own bus.

Event delivery: an event is published on Redis by the process where it happened and
re-published on every other process's bus with `remote=True`. The notifier subscribes
`local_only`, so a driver hears about an event once, from the process that saw it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import redis.asyncio as aioredis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from backend.chargers.registry import ChargerRegistry
from backend.chargers.relay import LocalChargerCommands
from backend.models import Charger
from backend.services import events as domain
from backend.services.events import DomainEvent, EventBus
from backend.services.ports import CommandResult, CommandStatus

log = logging.getLogger(__name__)

REPLY_MARGIN = 2.0  # seconds the requester waits beyond the holder's own OCPP call timeout
COMMANDS = {
    "remote_start",
    "remote_stop",
    "unlock",
    "reset",
    "change_availability",
    "trigger_message",
    "change_configuration",
    "get_configuration",
    "operate",
}


def event_types() -> dict[str, type[domain.SessionEvent]]:
    """Every domain event class by name (new ones travel without a change here)."""
    found: dict[str, type[domain.SessionEvent]] = {}
    pending: list[type[domain.SessionEvent]] = [domain.SessionEvent]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


# Renew only if the lease is still ours; delete only if still ours.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def new_process_id() -> str:
    """Unique per process start: host, pid and a random part."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def encode_event(event: DomainEvent, origin: str) -> str:
    return json.dumps(
        {"origin": origin, "type": type(event).__name__, "fields": dataclasses.asdict(event)}
    )


def decode_event(raw: str) -> tuple[str, DomainEvent] | None:
    data = json.loads(raw)
    cls = event_types().get(data.get("type", ""))
    if cls is None:
        return None
    return str(data["origin"]), cls(**data["fields"])


def result_to_json(result: CommandResult) -> dict[str, Any]:
    return {
        "status": str(result.status),
        "ocpp_status": result.ocpp_status,
        "detail": result.detail,
        "response": result.response,
    }


def result_from_json(data: dict[str, Any]) -> CommandResult:
    return CommandResult(
        CommandStatus(data["status"]),
        ocpp_status=data.get("ocpp_status"),
        detail=data.get("detail"),
        response=dict(data.get("response") or {}),
    )


class RedisNetwork:
    """One process's membership in the network: leases, remote commands, takeover, events."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        registry: ChargerRegistry,
        local: LocalChargerCommands,
        sessions: async_sessionmaker[AsyncSession],
        events: EventBus,
        call_timeout: float,
        lease_seconds: float = 15.0,
        process_id: str | None = None,
    ) -> None:
        self.redis: aioredis.Redis = aioredis.from_url(url, decode_responses=True)
        self.prefix = prefix
        self.registry = registry
        self.local = local
        self.sessions = sessions
        self.events = events
        self.call_timeout = call_timeout
        self.lease_ms = max(1, int(lease_seconds * 1000))
        self.process_id = process_id or new_process_id()
        self.commands = RedisChargerCommands(self)
        self._pending: dict[str, asyncio.Future[CommandResult]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._renew = self.redis.register_script(_RENEW)
        self._release = self.redis.register_script(_RELEASE)

    # --- names ---------------------------------------------------------------------------

    def holder_key(self, charger_id: str) -> str:
        return f"{self.prefix}charger:{charger_id}:holder"

    def channel(self, process_id: str) -> str:
        return f"{self.prefix}process:{process_id}"

    @property
    def events_channel(self) -> str:
        return f"{self.prefix}events"

    # --- life cycle ----------------------------------------------------------------------

    async def ping(self) -> None:
        """Raise unless Redis answers PING now (start-up and /readyz)."""
        if not await self.redis.ping():
            raise ConnectionError("Redis did not answer PING")

    async def start(self) -> None:
        await self.ping()  # fail at start, naming Redis, rather than on first use
        self.events.subscribe(self._forward, local_only=True)
        self._listener = asyncio.create_task(self._listen())
        await asyncio.wait_for(self._subscribed.wait(), 10)
        self._keeper = asyncio.create_task(self._keep())

    async def stop(self) -> None:
        for task in (self._listener, self._keeper, *self._tasks):
            if task is not None:
                task.cancel()
        tasks = [t for t in (self._listener, self._keeper, *self._tasks) if t is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        for charger_id in self.registry.ids():  # normally none left: sockets closed first
            connection = self.registry.get(charger_id)
            if connection is not None:
                with contextlib.suppress(Exception):
                    await self.release(charger_id, connection.id)
        await self.redis.aclose()

    # --- leases --------------------------------------------------------------------------

    def token(self, connection_id: str) -> str:
        return f"{self.process_id}/{connection_id}"

    async def acquire(self, charger_id: str, connection_id: str) -> None:
        """Take the charger's lease; tell a previous holder to drop its stale socket."""
        previous = await self.redis.set(
            self.holder_key(charger_id), self.token(connection_id), px=self.lease_ms, get=True
        )
        if isinstance(previous, str) and previous:
            process = previous.split("/", 1)[0]
            if process != self.process_id:
                log.info(
                    "%s moved here from %s; telling it to drop its socket", charger_id, process
                )
                await self._send(process, {"kind": "drop", "charger_id": charger_id})

    async def release(self, charger_id: str, connection_id: str) -> bool:
        """Give the lease back if still this connection's; True when nobody holds it now."""
        try:
            return bool(
                await self._release(
                    keys=[self.holder_key(charger_id)], args=[self.token(connection_id)]
                )
            )
        except Exception as error:  # Redis gone: the lease lapses by itself
            log.warning("releasing the lease of %s failed: %r", charger_id, error)
            return True

    async def holder(self, charger_id: str) -> str | None:
        """The id of the process holding the charger's socket, if any."""
        value = await self.redis.get(self.holder_key(charger_id))
        return str(value).split("/", 1)[0] if value is not None else None

    async def _keep(self) -> None:
        """Renew our leases and reconcile `online` with them, each every lease/3.

        Two loops: renewal talks to Redis only and must never wait for a busy database.
        """
        interval = self.lease_ms / 3000

        async def every(job: Any, name: str) -> None:
            while True:
                try:
                    await job()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s failed; retrying in %.1f s", name, interval)
                await asyncio.sleep(interval)

        async with asyncio.TaskGroup() as group:
            group.create_task(every(self.renew_all, "lease renewal"))
            group.create_task(every(self.sweep, "lease sweep"))

    async def renew_all(self) -> None:
        held = [(i, c.id) for i in self.registry.ids() if (c := self.registry.get(i)) is not None]
        if not held:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for charger_id, connection_id in held:
                await self._renew(
                    keys=[self.holder_key(charger_id)],
                    args=[self.token(connection_id), self.lease_ms],
                    client=pipe,
                )
            renewed = await pipe.execute()
        for (charger_id, connection_id), ok in zip(held, renewed, strict=True):
            if ok:
                continue
            key = self.holder_key(charger_id)
            token = self.token(connection_id)
            if await self.redis.set(key, token, px=self.lease_ms, nx=True):
                continue  # it lapsed (e.g. Redis was away) but nobody took it: ours again
            log.info("%s is held by another process now; dropping its socket here", charger_id)
            await self._drop(charger_id)

    async def sweep(self) -> None:
        """Chargers whose lease lapsed are offline; a held lease means online."""
        async with self.sessions() as db:
            rows = (await db.execute(select(col(Charger.id), col(Charger.online)))).all()
        if not rows:
            return
        holders = await self.redis.mget([self.holder_key(row[0]) for row in rows])
        lapsed, ours = [], []
        for (charger_id, online), held in zip(rows, holders, strict=True):
            if online and held is None:
                lapsed.append(charger_id)
            elif not online and held is not None and self.registry.get(charger_id) is not None:
                ours.append(charger_id)  # a reconnect raced its old socket's close: heal it
        if not lapsed and not ours:
            return
        if lapsed:
            log.info("leases lapsed; marking offline: %s", ", ".join(lapsed[:20]))
        async with self.sessions() as db:
            for ids, online in ((lapsed, False), (ours, True)):
                if ids:
                    await db.execute(
                        update(Charger).where(col(Charger.id).in_(ids)).values(online=online)
                    )
            await db.commit()

    async def _drop(self, charger_id: str) -> None:
        connection = self.registry.get(charger_id)
        if connection is None:
            return
        self.registry.unregister(connection)  # its end must not mark the charger offline
        connection.closed.set()
        with contextlib.suppress(Exception):
            await connection.close(1001, "replaced by a connection to another process")

    # --- messages ------------------------------------------------------------------------

    async def _send(self, process_id: str, message: dict[str, Any]) -> int:
        return int(await self.redis.publish(self.channel(process_id), json.dumps(message)))

    async def _listen(self) -> None:
        backoff = 0.5
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel(self.process_id), self.events_channel)
                self._subscribed.set()
                backoff = 0.5
                async for message in pubsub.listen():
                    if message is None or message.get("type") != "message":
                        continue
                    self._on_message(str(message["channel"]), str(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("Redis subscription lost (%r); resubscribing in %.1f s", error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                with contextlib.suppress(Exception):
                    aclose: Callable[[], Awaitable[None]] = pubsub.aclose  # untyped in redis-py
                    await aclose()

    def _on_message(self, channel: str, data: str) -> None:
        try:
            if channel == self.events_channel:
                decoded = decode_event(data)
                if decoded is not None and decoded[0] != self.process_id:
                    self._spawn(self.events.publish(decoded[1], remote=True))
                return
            message = json.loads(data)
            kind = message.get("kind")
            if kind == "request":
                self._spawn(self._execute(message))
            elif kind == "reply":
                future = self._pending.get(str(message.get("id")))
                if future is not None and not future.done():
                    future.set_result(result_from_json(message["result"]))
            elif kind == "drop":
                self._spawn(self._drop(str(message["charger_id"])))
        except Exception:
            log.exception("bad Redis message on %s: %r", channel, data[:200])

    async def _execute(self, message: dict[str, Any]) -> None:
        """A command from another process for a charger whose socket we hold."""
        name = str(message["command"])
        if name not in COMMANDS:
            result = CommandResult(CommandStatus.REJECTED, detail=f"unknown command {name}")
        else:
            method = getattr(self.local, name)
            result = await method(message["charger_id"], **message["args"])
        reply = {"kind": "reply", "id": message["id"], "result": result_to_json(result)}
        await self.redis.publish(str(message["reply_to"]), json.dumps(reply, default=str))

    async def _forward(self, event: DomainEvent) -> None:
        await self.redis.publish(self.events_channel, encode_event(event, self.process_id))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- commands ------------------------------------------------------------------------

    async def call(self, charger_id: str, name: str, args: dict[str, Any]) -> CommandResult:
        if self.registry.get(charger_id) is not None:
            method = getattr(self.local, name)
            result: CommandResult = await method(charger_id, **args)
            return result
        holder = await self.holder(charger_id)
        if holder is None or holder == self.process_id:
            return CommandResult(CommandStatus.OFFLINE, detail=f"charger {charger_id} is offline")
        request_id = uuid.uuid4().hex
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            receivers = await self._send(
                holder,
                {
                    "kind": "request",
                    "id": request_id,
                    "reply_to": self.channel(self.process_id),
                    "charger_id": charger_id,
                    "command": name,
                    "args": args,
                },
            )
            if receivers == 0:  # its holder died; the lease has not lapsed yet
                return CommandResult(
                    CommandStatus.OFFLINE, detail=f"charger {charger_id}: its process is gone"
                )
            limit = self.call_timeout + REPLY_MARGIN
            try:
                return await asyncio.wait_for(future, limit)
            except TimeoutError:
                return CommandResult(
                    CommandStatus.TIMED_OUT,
                    detail=f"no answer from the process holding {charger_id} in {limit} s",
                )
        finally:
            self._pending.pop(request_id, None)


class RedisChargerCommands:
    """The ChargerCommands port over the whole network: local socket or the holder's."""

    def __init__(self, network: RedisNetwork) -> None:
        self._network = network

    async def remote_start(
        self,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        charging_profile: dict[str, Any] | None = None,
    ) -> CommandResult:
        return await self._network.call(
            charger_id,
            "remote_start",
            {"connector_id": connector_id, "id_tag": id_tag, "charging_profile": charging_profile},
        )

    async def remote_stop(self, charger_id: str, transaction_id: int) -> CommandResult:
        return await self._network.call(
            charger_id, "remote_stop", {"transaction_id": transaction_id}
        )

    async def unlock(self, charger_id: str, connector_id: int) -> CommandResult:
        return await self._network.call(charger_id, "unlock", {"connector_id": connector_id})

    async def reset(self, charger_id: str, kind: Literal["Soft", "Hard"]) -> CommandResult:
        return await self._network.call(charger_id, "reset", {"kind": kind})

    async def change_availability(
        self, charger_id: str, connector_id: int, available: bool
    ) -> CommandResult:
        return await self._network.call(
            charger_id,
            "change_availability",
            {"connector_id": connector_id, "available": available},
        )

    async def trigger_message(
        self, charger_id: str, message: str, connector_id: int | None = None
    ) -> CommandResult:
        return await self._network.call(
            charger_id, "trigger_message", {"message": message, "connector_id": connector_id}
        )

    async def change_configuration(self, charger_id: str, key: str, value: str) -> CommandResult:
        return await self._network.call(
            charger_id, "change_configuration", {"key": key, "value": value}
        )

    async def get_configuration(self, charger_id: str, keys: list[str] | None) -> CommandResult:
        return await self._network.call(charger_id, "get_configuration", {"keys": keys})

    async def operate(self, charger_id: str, action: str, fields: dict[str, Any]) -> CommandResult:
        return await self._network.call(charger_id, "operate", {"action": action, "fields": fields})
