"""The console's login session: a signed cookie, and the CSRF token bound to it.

The cookie holds a JWT (HS256, `SECRET_KEY`) with its own audience, so a bearer token of
the API is never accepted as a console session or the other way round. It is HttpOnly,
SameSite=Strict and, outside development or behind https, Secure with the `__Host-` prefix.
Every form carries the session's CSRF token; the login form, before there is a session,
uses a double-submit cookie, under the same rule: whenever it is Secure it is
`__Host-chargebot_login_csrf` (Path=/, no Domain, so no subdomain can plant one); on a plain
http development server it is `chargebot_login_csrf`. A deactivated account loses its
session on the next request.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

import jwt
from fastapi import Request, Response

from backend.db import utcnow
from backend.models import StaffUser
from backend.settings import Settings

_ALGORITHM = "HS256"
_AUDIENCE = "chargebot-console"
LOGIN_CSRF_COOKIE = "chargebot_login_csrf"  # `__Host-` prefixed whenever Secure


@dataclass(frozen=True)
class ConsoleSession:
    staff_id: int
    csrf: str


def secure_cookies(settings: Settings) -> bool:
    """Secure cookies unless this is a development server on plain http."""
    return not settings.is_development or settings.public_base_url.startswith("https://")


def session_cookie_name(settings: Settings) -> str:
    return "__Host-chargebot_console" if secure_cookies(settings) else "chargebot_console"


def login_csrf_cookie_name(settings: Settings) -> str:
    return f"__Host-{LOGIN_CSRF_COOKIE}" if secure_cookies(settings) else LOGIN_CSRF_COOKIE


def _login_csrf_path(settings: Settings) -> str:
    return "/" if secure_cookies(settings) else "/console"  # `__Host-` demands Path=/


def start_session(response: Response, settings: Settings, staff: StaffUser) -> None:
    """Log the staff member in: a fresh session (and CSRF token) in the cookie."""
    now = utcnow()
    max_age = int(settings.staff_token_hours * 3600)
    claims = {
        "sub": str(staff.id),
        "csrf": secrets.token_urlsafe(24),
        "aud": _AUDIENCE,
        "iat": now,
        "exp": now + timedelta(seconds=max_age),
    }
    response.set_cookie(
        session_cookie_name(settings),
        jwt.encode(claims, settings.secret_key, algorithm=_ALGORITHM),
        max_age=max_age,
        path="/",
        secure=secure_cookies(settings),
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(
        login_csrf_cookie_name(settings),
        path=_login_csrf_path(settings),
        secure=secure_cookies(settings),
        httponly=True,
        samesite="strict",
    )


def end_session(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        session_cookie_name(settings),
        path="/",
        secure=secure_cookies(settings),
        httponly=True,
        samesite="strict",
    )


def read_session(request: Request, settings: Settings) -> ConsoleSession | None:
    """The valid, unexpired session of this request's cookie; None for anything else."""
    token = request.cookies.get(session_cookie_name(settings))
    if not token or not settings.secret_key:
        return None
    try:
        claims = jwt.decode(token, settings.secret_key, algorithms=[_ALGORITHM], audience=_AUDIENCE)
        return ConsoleSession(int(claims["sub"]), str(claims["csrf"]))
    except (jwt.PyJWTError, KeyError, ValueError):
        return None


def login_csrf_cookie(request: Request, settings: Settings) -> str | None:
    """The login form's double-submit token as the browser sent it back, if it did."""
    return request.cookies.get(login_csrf_cookie_name(settings))


def login_csrf_of(request: Request, settings: Settings) -> str:
    """The login form's double-submit token: the one in the cookie, or a new one."""
    return login_csrf_cookie(request, settings) or secrets.token_urlsafe(24)


def keep_login_csrf(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        login_csrf_cookie_name(settings),
        token,
        max_age=3600,
        path=_login_csrf_path(settings),
        secure=secure_cookies(settings),
        httponly=True,
        samesite="strict",
    )


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a missing token never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
