"""POST /auth/token: the OAuth2 password flow for support agents and operators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from backend.api.deps import SessionDep, SettingsDep
from backend.services.staff import authenticate, issue_token

router = APIRouter(prefix="/auth", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


@router.post("/token")
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], db: SessionDep, settings: SettingsDep
) -> Token:
    """Form fields `username` (the email) and `password`; a signed, expiring bearer token."""
    staff = await authenticate(db, form.username, form.password)
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
