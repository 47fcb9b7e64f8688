"""Charger keys (OCPP 1.6 security profile 1/2: the HTTP Basic password, AuthorizationKey).

Keys are machine secrets with 160 bits of entropy, so a password KDF buys nothing and costs
tens of milliseconds and 64 MiB per connect (thousands of chargers reconnect after a deploy).
They are stored as HMAC-SHA256 under a server-side pepper and compared in constant time; a
stolen database alone does not let anyone connect as a charger.

The 1.6 security whitepaper defines AuthorizationKey as 16–20 bytes written as up to 40
hexadecimal digits. Some chargers send those digits as the password, others the decoded
octets; both are accepted. Argon2 hashes from before keys (operators' own passwords) are
verified once and replaced by the keyed hash on the next successful connect.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from backend.services.passwords import PasswordVerifier

KEY_BYTES = 20  # the whitepaper's maximum: 40 hexadecimal digits
MIN_PASSWORD_LENGTH = 16  # an operator's own key: at least as long as the whitepaper's minimum
MAX_PASSWORD_LENGTH = 40
HMAC_PREFIX = "hmac-sha256$"
LEGACY_PREFIX = "$argon2"
_HEX = re.compile(r"^[0-9A-Fa-f]+$")
_PEPPER_LABEL = b"chargebot/ocpp-key-pepper/v1"
# Legacy argon2 charger hashes get a pool of their own, apart from the staff login's: wrong
# keys against a legacy charger must not fill the login's queue (logins answering 503).
# One hash at once and a short queue; beyond that the charger is told 503 Retry-After.
LEGACY_WORKERS = 1
LEGACY_MAX_WAITING = 4
_legacy_verifier = PasswordVerifier(workers=LEGACY_WORKERS, max_waiting=LEGACY_MAX_WAITING)


def generate_key() -> str:
    """A new AuthorizationKey: 20 random bytes as 40 hexadecimal digits."""
    return secrets.token_hex(KEY_BYTES)


def pepper_from(explicit: str, secret_key: str) -> bytes:
    """OCPP_KEY_PEPPER if set, else a value derived from SECRET_KEY (never SECRET_KEY itself)."""
    if explicit:
        return explicit.encode("utf-8")
    return hmac.new(secret_key.encode("utf-8"), _PEPPER_LABEL, hashlib.sha256).digest()


def _canonical(key: bytes) -> bytes:
    """Hexadecimal keys compare case-insensitively (the whitepaper writes them as hex)."""
    try:
        text = key.decode("ascii")
    except UnicodeDecodeError:
        return key
    return text.lower().encode("ascii") if _HEX.match(text) else key


def _digest(charger_id: str, key: bytes, pepper: bytes) -> str:
    # The charger id salts the hash: two chargers with one key do not share a hash.
    message = charger_id.encode("utf-8") + b"\x00" + _canonical(key)
    return HMAC_PREFIX + hmac.new(pepper, message, hashlib.sha256).hexdigest()


def hash_key(charger_id: str, key: str, pepper: bytes) -> str:
    """What is stored in charger.password_hash / pending_key_hash."""
    return _digest(charger_id, key.encode("utf-8"), pepper)


def _candidates(password: bytes) -> list[bytes]:
    """The password as sent, and its hex digits if a charger sent a key's decoded octets."""
    found = [password]
    if MIN_PASSWORD_LENGTH <= len(password) <= KEY_BYTES:
        found.append(password.hex().encode("ascii"))
    return found


def verify_hmac(charger_id: str, stored: str, password: bytes, pepper: bytes) -> bool:
    """Constant-time check of a keyed hash; False for any other kind of stored value."""
    if not stored.startswith(HMAC_PREFIX):
        return False
    ok = False
    for candidate in _candidates(password):
        ok |= hmac.compare_digest(stored, _digest(charger_id, candidate, pepper))
    return ok


def needs_upgrade(stored: str) -> bool:
    """A legacy argon2 hash, to be replaced by the keyed hash once the charger proves its key."""
    return stored.startswith(LEGACY_PREFIX)


async def verify(charger_id: str, stored: str, password: bytes, pepper: bytes) -> bool:
    """The keyed hash in place; a legacy argon2 hash in the chargers' own bounded argon2 pool.

    Raises PasswordCheckBusyError when that pool is full (many legacy chargers at once).
    """
    if needs_upgrade(stored):
        try:
            text = password.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return await _legacy_verifier.verify(stored, text)
    return verify_hmac(charger_id, stored, password, pepper)


def check_password(value: str) -> str:
    """An operator's own key: 16–40 printable characters; raises ValueError otherwise."""
    if not MIN_PASSWORD_LENGTH <= len(value) <= MAX_PASSWORD_LENGTH:
        raise ValueError(
            f"a charger key has {MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} characters; "
            "leave it out and the server generates one"
        )
    if not value.isprintable() or not value.isascii():
        raise ValueError("a charger key is printable ASCII (no spaces or control characters)")
    if " " in value:
        raise ValueError("a charger key is printable ASCII (no spaces or control characters)")
    return value


class VerifiedKeys:
    """Keys verified recently, per charger: a reconnect within `ttl` skips the hash check.

    An entry is (the stored hash it was verified against, a digest of the presented key,
    until when). It counts only if the stored hash read on this connect is the same one, so
    a rotated, replaced or removed key (in any process: the hash is read on every connect)
    misses at once; the TTL only bounds how long a proof is kept. A key that fails is never
    stored. The digest is keyed with a per-process random salt, so the memory holds nothing
    a key could be checked against offline. At most `max_entries`, least recently used out.
    """

    def __init__(
        self,
        ttl: float = 60.0,
        max_entries: int = 20_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._salt = secrets.token_bytes(32)
        self._entries: OrderedDict[str, tuple[str, bytes, float]] = OrderedDict()

    def _digest(self, password: bytes) -> bytes:
        return hashlib.blake2b(password, key=self._salt, digest_size=32).digest()

    def __len__(self) -> int:
        return len(self._entries)

    def hit(self, charger_id: str, stored: str, password: bytes) -> bool:
        entry = self._entries.get(charger_id)
        if entry is None:
            return False
        entry_stored, digest, until = entry
        if until <= self._clock() or entry_stored != stored:
            del self._entries[charger_id]
            return False
        if not hmac.compare_digest(digest, self._digest(password)):
            return False
        self._entries.move_to_end(charger_id)
        return True

    def add(self, charger_id: str, stored: str, password: bytes) -> None:
        """Remember a key that was just verified against `stored`."""
        if self.ttl <= 0 or self.max_entries <= 0:
            return
        self._entries[charger_id] = (stored, self._digest(password), self._clock() + self.ttl)
        self._entries.move_to_end(charger_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, charger_id: str) -> None:
        self._entries.pop(charger_id, None)
