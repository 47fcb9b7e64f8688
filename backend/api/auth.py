"""POST /auth/token: the OAuth2 password flow for support agents and operators."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel

from backend.api.deps import LoginThrottleDep, PasswordFormDep, SessionDep, SettingsDep
from backend.services.login_throttle import client_address
from backend.services.passwords import PasswordCheckBusyError
from backend.services.staff import LoginThrottledError, issue_token, log_in, login_field_problem

router = APIRouter(prefix="/auth", tags=["auth"])

BUSY_RETRY_SECONDS = 1


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


@router.post(
    "/token",
    responses={
        401: {"description": "Wrong email or password (or a deactivated account)."},
        429: {
            "description": "Too many failed logins for the account or from the address; "
            "`Retry-After` says how many seconds to wait."
        },
        503: {"description": "Too many logins at once; retry after `Retry-After` seconds."},
    },
)
async def token(
    form: PasswordFormDep,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    throttle: LoginThrottleDep,
) -> Token:
    """Form fields `username` (the email) and `password`; a signed, expiring bearer token."""
    problem = login_field_problem(form.username, form.password)
    if problem:
        raise HTTPException(status_code=422, detail=problem)
    address = client_address(request.client.host if request.client else None)
    try:
        staff = await log_in(db, throttle, form.username, form.password, address)
    except LoginThrottledError as exc:
        raise HTTPException(
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            detail=str(exc),
            headers={"Retry-After": str(exc.retry_after)},
        ) from exc
    except PasswordCheckBusyError as exc:
        raise HTTPException(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="too many logins at once; try again in a moment",
            headers={"Retry-After": str(BUSY_RETRY_SECONDS)},
        ) from exc
    if staff is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="wrong email or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    hours = settings.staff_token_hours
    return Token(
        access_token=issue_token(settings.secret_key, staff, hours),
        expires_in=int(hours * 3600),
    )
