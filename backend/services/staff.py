"""Support staff and operators: accounts, password login, and signed bearer tokens."""

from __future__ import annotations

from datetime import timedelta

import jwt
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from backend.db import utcnow
from backend.models import StaffRole, StaffUser
from backend.services.errors import ConflictError, InvalidFieldError
from backend.services.passwords import hash_password, verify_password

MIN_PASSWORD_LENGTH = 10
_ALGORITHM = "HS256"
_AUDIENCE = "chargebot-staff"
_NOBODYS_HASH = hash_password("no account has this password")


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
        email=email, name=name.strip()[:120], role=role, password_hash=hash_password(password)
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
    staff = await db.scalar(
        select(StaffUser).where(func.lower(col(StaffUser.email)) == _normalized_email(email))
    )
    if staff is None:
        # The same argon2 work as for a real account, so timing tells no one which emails exist.
        verify_password(_NOBODYS_HASH, password)
        return None
    if not staff.active or not verify_password(staff.password_hash, password):
        return None
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
