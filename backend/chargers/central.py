"""The central system: accepts charge point WebSockets at /ocpp/{id} and serves them."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import random
from typing import Any, Protocol

from cryptography import x509
from fastapi import APIRouter, WebSocket
from starlette.responses import PlainTextResponse, Response
from starlette.websockets import WebSocketDisconnect, WebSocketState

from backend.chargers.client_certificates import client_certificate, common_names
from backend.chargers.handlers import CentralChargePoint
from backend.chargers.protocol import SUBPROTOCOL, ConnectionLost
from backend.chargers.registry import ChargerRegistry, Connection
from backend.services import charger_keys
from backend.services.certificates import ChargerCertificates, fingerprint
from backend.services.charger_jobs import ChargerJobs
from backend.services.charger_state import ChargerIdentity, ChargerStateService
from backend.services.charging import ChargingService
from backend.services.network import valid_charger_id
from backend.services.passwords import PasswordCheckBusyError
from backend.services.ports import ChargerCommands

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024  # an OCPP 1.6 frame is a few KiB; more is a mistake or an attack


class Leases(Protocol):
    """Who holds which charger across processes (Redis); absent in the embedded setup."""

    async def acquire(self, charger_id: str, connection_id: str) -> None: ...

    async def release(self, charger_id: str, connection_id: str) -> bool: ...


class StarletteConnection:
    """What the ocpp library needs of a socket: recv() and send()."""

    def __init__(self, websocket: WebSocket, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._websocket = websocket
        self._max_bytes = max_bytes

    async def recv(self) -> str | bytes:
        try:
            message = await self._websocket.receive()
        except (RuntimeError, WebSocketDisconnect) as error:
            raise ConnectionLost(str(error)) from error
        if message["type"] == "websocket.disconnect":
            raise ConnectionLost(f"closed with code {message.get('code', 1000)}")
        text = message.get("text")
        data: str | bytes = text if text is not None else message.get("bytes") or b""
        if self._too_big(data):
            # RFC 6455 1009: the server's own cap, also where uvicorn's ws_max_size is larger.
            await self._websocket.close(code=1009, reason="message too big")
            raise ConnectionLost(f"a frame of over {self._max_bytes} bytes")
        return data

    def _too_big(self, data: str | bytes) -> bool:
        if len(data) <= self._max_bytes // 4:  # at most 4 bytes per character
            return False
        size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
        return size > self._max_bytes

    async def send(self, data: str) -> None:
        try:
            await self._websocket.send_text(data)
        except (RuntimeError, WebSocketDisconnect) as error:  # closed meanwhile
            raise ConnectionLost(str(error)) from error


def basic_credentials(header: str | None) -> tuple[str, bytes] | None:
    """(username, password octets): a 1.6 AuthorizationKey may be sent as raw bytes."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True)
    except binascii.Error:
        return None
    username, sep, password = decoded.partition(b":")
    try:
        name = username.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return (name, password) if sep else None


class CentralSystem:
    """Everything the OCPP endpoint needs, built once per app."""

    def __init__(
        self,
        state: ChargerStateService,
        charging: ChargingService,
        registry: ChargerRegistry,
        commands: ChargerCommands,
        jobs: ChargerJobs,
        *,
        auto_register: bool = False,
        call_timeout: float = 30.0,
        heartbeat_interval: int = 300,
        leases: Leases | None = None,
        key_pepper: bytes = b"",
        allow_unsecured: bool = False,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        verified_keys: charger_keys.VerifiedKeys | None = None,
        seen_flush_interval: float = 5.0,
        boot_capacity: int = 1000,
        boot_retry_seconds: int = 10,
        handler_concurrency: int = 4,
        status_trigger_seconds: float = 10.0,
        certificates: ChargerCertificates | None = None,
    ) -> None:
        self.state = state
        self.charging = charging
        self.registry = registry
        self.commands = commands
        self.jobs = jobs
        self.certificates = certificates
        self.auto_register = auto_register
        self.key_pepper = key_pepper
        self.allow_unsecured = allow_unsecured
        self.max_message_bytes = max_message_bytes
        self.call_timeout = call_timeout
        self.heartbeat_interval = heartbeat_interval
        self.leases = leases
        self.verified_keys = verified_keys or charger_keys.VerifiedKeys()
        self.seen_flush_interval = seen_flush_interval
        self.boot_capacity = boot_capacity
        self.boot_retry_seconds = boot_retry_seconds
        # OCPP messages whose handlers use the database, at once: the pool (5 + 10
        # connections by default) keeps room for the admin API, the chat and the timers.
        self.handler_slots = asyncio.Semaphore(handler_concurrency)
        self.status_trigger_seconds = status_trigger_seconds
        self._tasks: set[asyncio.Task[Any]] = set()
        self._flusher: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Write coalesced last-seen times every `seen_flush_interval` seconds."""
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_seen_every())

    async def _flush_seen_every(self) -> None:
        while True:
            await asyncio.sleep(self.seen_flush_interval)
            try:
                await self.state.flush_seen()
            except Exception:
                log.exception("writing last-seen times failed; retrying")

    def seen(self, charger_id: str) -> None:
        """A sign of life (a heartbeat): kept in memory, written with the next flush."""
        self.state.seen(charger_id)

    def boot_admitted(self) -> bool:
        """Room for one more boot; beyond capacity a boot is answered Pending, not queued."""
        return self.state.boots_waiting < self.boot_capacity

    def boot_retry_interval(self) -> int:
        """Seconds a Pending charger waits before it boots again; spread so they do not
        all come back at once."""
        return self.boot_retry_seconds + random.randint(0, self.boot_retry_seconds)

    async def _admit(self, websocket: WebSocket, charger_id: str) -> ChargerIdentity | None:
        """Identity and key are checked before the upgrade (404 / 401)."""
        if not valid_charger_id(charger_id):
            # NUL bytes, slashes, 10 KiB of junk: nothing a charger is called; no query made.
            await websocket.send_denial_response(Response(status_code=404))
            return None
        identity = await self.state.identity(charger_id)
        if identity is None:
            if not self.auto_register:
                await websocket.send_denial_response(Response(status_code=404))
                return None
            identity = await self.state.auto_register(charger_id)
            log.info("auto-registered unknown charger %s (boot answered Pending)", charger_id)
        certificate = client_certificate(websocket.scope)
        if certificate is not None:
            return await self._admit_by_certificate(websocket, identity, certificate)
        used = 2 if websocket.scope.get("scheme") == "wss" else 1
        if used < identity.security_profile:
            log.warning(
                "%s: connected with security profile %d, but needs %d; refused",
                charger_id,
                used,
                identity.security_profile,
            )
            await self._unauthorized(websocket)
            return None
        if not identity.has_key:
            if self.allow_unsecured:
                return identity
            log.warning(
                "%s has no key and OCPP_ALLOW_UNSECURED is off: refused; give it a key with "
                'POST /admin/chargers/%s/key {"handshake": false}',
                charger_id,
                charger_id,
            )
            await self._unauthorized(websocket)
            return None
        credentials = basic_credentials(websocket.headers.get("authorization"))
        if credentials is None or credentials[0] != charger_id:
            log.info("%s: connection without its credentials refused", charger_id)
            await self._unauthorized(websocket)
            return None
        try:
            ok = await self._key_ok(identity, credentials[1])
        except PasswordCheckBusyError:  # a legacy argon2 hash, and the pool is full
            await websocket.send_denial_response(
                Response(status_code=503, headers={"Retry-After": "5"})
            )
            return None
        if not ok:
            log.warning("%s: connection with a wrong key refused", charger_id)
            await self._unauthorized(websocket)
            return None
        return identity

    async def _admit_by_certificate(
        self, websocket: WebSocket, identity: ChargerIdentity, certificate: x509.Certificate
    ) -> ChargerIdentity | None:
        """Profile 3: the TLS handshake verified the certificate against TLS_CLIENT_CAFILE; it
        must be the very certificate we signed for this charger (SignCertificate) and it
        accepted, whatever its CN says and whatever password comes with it."""
        if identity.certificate_pin is None or fingerprint(certificate) != identity.certificate_pin:
            log.warning(
                "%s: a client certificate not issued to it (CN %s) refused",
                identity.id,
                ", ".join(sorted(common_names(certificate))) or "-",
            )
            await self._unauthorized(websocket)
            return None
        if identity.security_profile < 3:
            await self.state.raise_security_profile(identity.id, 3)
            log.info(
                "%s: connected with its client certificate; profile 3 from now on", identity.id
            )
        return identity

    async def _key_ok(self, identity: ChargerIdentity, password: bytes) -> bool:
        """The current key, or the rotated one (which then becomes current)."""
        stored = identity.password_hash
        if stored is not None and self.verified_keys.hit(identity.id, stored, password):
            return True
        if stored is not None and await charger_keys.verify(
            identity.id, stored, password, self.key_pepper
        ):
            if charger_keys.needs_upgrade(stored):
                await self._upgrade(identity.id, stored, password)
            else:
                self.verified_keys.add(identity.id, stored, password)
            return True
        pending = identity.pending_key_hash
        if pending is not None and charger_keys.verify_hmac(
            identity.id, pending, password, self.key_pepper
        ):
            # It can only know the rotated key if it took it: retire the old one.
            if await self.state.promote_pending_key(identity.id, pending):
                log.info("%s connected with its rotated key; the old key is retired", identity.id)
            self.verified_keys.forget(identity.id)
            return True
        return False

    async def _upgrade(self, charger_id: str, legacy: str, password: bytes) -> None:
        """A legacy argon2 hash, once verified, becomes the fast keyed hash."""
        try:
            key = password.decode("utf-8")
        except UnicodeDecodeError:  # argon2 verified it, so it is text; be safe anyway
            return
        new = charger_keys.hash_key(charger_id, key, self.key_pepper)
        if await self.state.replace_key_hash(charger_id, legacy, new):
            log.info("%s: legacy key hash replaced by the keyed hash", charger_id)

    @staticmethod
    async def _unauthorized(websocket: WebSocket) -> None:
        await websocket.send_denial_response(
            Response(status_code=401, headers={"WWW-Authenticate": 'Basic realm="OCPP"'})
        )

    async def serve(self, websocket: WebSocket, charger_id: str) -> None:
        identity = await self._admit(websocket, charger_id)
        if identity is None:
            return
        if SUBPROTOCOL not in websocket.scope.get("subprotocols", []):
            # Not upgraded at all (OCTT TC_088): a client that cannot speak OCPP 1.6-J gets an
            # HTTP 400 naming the subprotocol, never an open socket.
            await websocket.send_denial_response(
                PlainTextResponse(f"{SUBPROTOCOL} subprotocol required", status_code=400)
            )
            return
        await websocket.accept(subprotocol=SUBPROTOCOL)
        charge_point = CentralChargePoint(
            identity.id, StarletteConnection(websocket, self.max_message_bytes), self
        )

        async def close(code: int = 1000, reason: str = "") -> None:
            if websocket.client_state != WebSocketState.DISCONNECTED:
                await websocket.close(code=code, reason=reason)

        connection = Connection(charger_id=identity.id, charge_point=charge_point, close=close)
        charge_point.connection = connection
        if identity.boot_status in ("Pending", "Rejected"):
            # Not accepted: no commands even if it reconnects without booting (OCPP allows
            # that); a boot on this socket answers afresh.
            connection.boot_answer = identity.boot_status
        stale = self.registry.register(connection)
        if stale is not None:
            log.info("%s reconnected; closing its stale socket", identity.id)
            stale.closed.set()
            self._spawn(self._close_quietly(stale, 1001, "replaced by a new connection"))
        if self.leases is not None:
            try:
                await self.leases.acquire(identity.id, connection.id)
            except Exception:
                log.exception("%s: could not take its lease; closing", identity.id)
                self.registry.unregister(connection)
                await close(1011, "lease unavailable")
                return
        try:
            # Inside the try: a failed (batched) write still unregisters this connection.
            await self.state.set_online(identity.id, True)
            self._spawn(self._ask_for_status_if_silent(charge_point, connection))
            await charge_point.start()
        except ConnectionLost:
            pass
        except Exception:
            log.exception("%s: connection ended with an error", identity.id)
        finally:
            connection.closed.set()
            if self.registry.unregister(connection) and (
                self.leases is None or await self.leases.release(identity.id, connection.id)
            ):
                await self.state.set_online(identity.id, False)

    async def _ask_for_status_if_silent(
        self, charge_point: CentralChargePoint, connection: Connection
    ) -> None:
        """Fresh connector statuses from a charger that connected and reports nothing.

        A charger that boots reports its connectors itself; one that reconnects without a
        boot (allowed after a network blip) may not. Asking every charger at once would
        double a connect storm's messages, and a TriggerMessage nobody asked for confuses
        an operator's own (OCPP test cases TC_054/055). Never from inside a handler.
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(charge_point.reported.wait(), self.status_trigger_seconds)
            return
        if connection.closed.is_set():
            return
        charger_id = connection.charger_id
        result = await self.commands.trigger_message(charger_id, "StatusNotification")
        if not result.accepted:
            log.info("%s: TriggerMessage StatusNotification: %s", charger_id, result.status)

    async def _close_quietly(self, connection: Connection, code: int, reason: str) -> None:
        try:
            await connection.close(code, reason)
        except Exception as error:  # it may already be gone
            log.debug("closing stale socket of %s: %r", connection.charger_id, error)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close_all(self) -> None:
        """Close every socket, finish batched writes and write the last-seen times."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        for charger_id in self.registry.ids():
            connection = self.registry.get(charger_id)
            if connection is not None:
                await self._close_quietly(connection, 1001, "server shutting down")
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        try:
            await self.charging.drain()
        except Exception:
            log.exception("writing the last batched MeterValues failed")
        try:
            await self.state.drain()
        except Exception:
            log.exception("writing the last batched charger states failed")


router = APIRouter()


@router.websocket("/ocpp/{charge_point_id}")
async def ocpp_endpoint(websocket: WebSocket, charge_point_id: str) -> None:
    central: CentralSystem = websocket.app.state.central
    await central.serve(websocket, charge_point_id)
