"""Support staff and operators: accounts, password login, and signed bearer tokens."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import jwt
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from backend.db import utcnow
from backend.models import StaffRole, StaffUser
from backend.services.errors import ConflictError, InvalidFieldError
from backend.services.login_throttle import LoginThrottle
from backend.services.passwords import check_room, hash_password, verify_password_async

MIN_PASSWORD_LENGTH = 10
_ALGORITHM = "HS256"
_AUDIENCE = "chargebot-staff"
MAX_EMAIL_LENGTH = 254
MAX_PASSWORD_LENGTH = 1000
# Computed once at import (startup): unknown and deactivated accounts are checked against it,
# so every login costs the same argon2 work and timing tells no one which emails exist.
_NOBODYS_HASH = hash_password("no account has this password")


class LoginThrottledError(Exception):
    """Too many failed logins for this account or from this address: wait `retry_after` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after} s")
        self.retry_after = retry_after


def login_field_problem(email: str, password: str) -> str | None:
    """Why these login fields can never be valid (a readable message), or None."""
    if "\x00" in email or "\x00" in password:
        return "email and password must not contain NUL characters"
    if len(email) > MAX_EMAIL_LENGTH:
        return f"email: at most {MAX_EMAIL_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"password: at most {MAX_PASSWORD_LENGTH} characters"
    return None


def _normalized_email(email: str) -> str:
    return email.strip().lower()


async def create_staff(
    db: AsyncSession, *, email: str, name: str, role: str, password: str
) -> StaffUser:
    """A new staff account; ConflictError for a taken email, InvalidFieldError for bad input."""
    email = _normalized_email(email)
    if "@" not in email or len(email) > 254:
        raise InvalidFieldError("email", "not an email address")
    if not name.strip():
        raise InvalidFieldError("name", "must not be empty")
    if role not in {r.value for r in StaffRole}:
        raise InvalidFieldError("role", "must be 'support' or 'operator'")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidFieldError("password", f"at least {MIN_PASSWORD_LENGTH} characters")
    taken = await db.scalar(
        select(col(StaffUser.id)).where(func.lower(col(StaffUser.email)) == email)
    )
    if taken is not None:
        raise ConflictError(f"a staff user with email {email} exists")
    staff = StaffUser(
        email=email,
        name=name.strip()[:120],
        role=role,
        password_hash=await asyncio.to_thread(hash_password, password),
    )
    db.add(staff)
    try:
        await db.commit()
    except IntegrityError as exc:  # the same email created meanwhile
        await db.rollback()
        raise ConflictError(f"a staff user with email {email} exists") from exc
    await db.refresh(staff)
    return staff


async def authenticate(db: AsyncSession, email: str, password: str) -> StaffUser | None:
    """The active account with this email and password, or None.

    Unknown, deactivated and real accounts cost the same argon2 verification (off the event
    loop; `PasswordCheckBusyError` when too many are waiting).
    """
    staff = await db.scalar(
        select(StaffUser).where(func.lower(col(StaffUser.email)) == _normalized_email(email))
    )
    # End the read: its connection goes back to the pool while argon2 works, so a login flood
    # never holds every database connection (the session keeps `staff` loaded).
    await db.commit()
    if staff is None or not staff.active:
        await verify_password_async(_NOBODYS_HASH, password)
        return None
    if not await verify_password_async(staff.password_hash, password):
        return None
    return staff


async def log_in(
    db: AsyncSession, throttle: LoginThrottle, email: str, password: str, address: str
) -> StaffUser | None:
    """`authenticate` behind the failed-login back-off of `throttle`.

    LoginThrottledError while the account or the address is locked (no password is checked
    then); PasswordCheckBusyError, before any work, when too many checks wait already.
    Otherwise the attempt counts as a failure before its check starts (so parallel guesses
    cannot all pass one unlocked moment), and is given back if the password was right or the
    check failed to happen.
    """
    check_room()
    attempt = await throttle.begin(email, address)
    if attempt.retry_after:
        raise LoginThrottledError(attempt.retry_after)
    try:
        staff = await authenticate(db, email, password)
    except Exception:  # no answer about the password (database down, checks busy)
        await throttle.give_back(attempt)
        raise
    if staff is not None:
        await throttle.give_back(attempt)
        await throttle.succeeded(email, address)
    return staff


def issue_token(secret: str, staff: StaffUser, hours: float) -> str:
    now = utcnow()
    claims = {
        "sub": str(staff.id),
        "role": staff.role,
        "aud": _AUDIENCE,
        "iat": now,
        "exp": now + timedelta(hours=hours),
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def staff_id_of(secret: str, token: str) -> int | None:
    """The staff id a valid, unexpired token was issued to; None for anything else."""
    if not secret:
        return None
    try:
        claims = jwt.decode(token, secret, algorithms=[_ALGORITHM], audience=_AUDIENCE)
        return int(claims["sub"])
    except (jwt.PyJWTError, KeyError, ValueError):
        return None
