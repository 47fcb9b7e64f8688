"""Every dependency alias of the routes (`SessionDep`, `AdminDep`, `CurrentStaff`,
`ChargingDep`, `PaymentsDep`, `OutboundDep`, `DeskDep`, ...): what they take from the app.

Every one is `async def`, even those that only read `app.state`: FastAPI runs a plain `def`
dependency in its thread pool, a hand-off to a thread and back per dependency per request,
each waiting its turn on a busy event loop (tests/test_api_dependencies.py holds this)."""

from __future__ import annotations

import hmac
import math
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any, get_args

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, OAuth2PasswordRequestForm
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.api.support_desk import SupportDesk
from backend.db import session_scope
from backend.models import StaffRole, StaffUser
from backend.services.audit import ADMIN_TOKEN_ACTOR
from backend.services.charging import ChargingService
from backend.services.local_list import LocalListSync
from backend.services.login_throttle import LoginThrottle
from backend.services.payments import PaymentService
from backend.services.ports import ChargerCommands, FaqCatalogue, OutboundMessages
from backend.services.reservations import ReservationService
from backend.services.staff import staff_id_of
from backend.settings import Settings


async def get_settings_from_app(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    async for session in session_scope(request.app.state.sessions):
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_from_app)]
SessionDep = Annotated[AsyncSession, Depends(get_db)]

# Database ids are 32-bit INTEGER columns (PostgreSQL's range; SQLite overflows at 2^63): an id
# outside 1..2^31-1 can exist nowhere, so it is refused (422) before it reaches the database.
MAX_ID = 2**31 - 1
IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="a database id")]


async def get_login_throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


LoginThrottleDep = Annotated[LoginThrottle, Depends(get_login_throttle)]
# POST /auth/token's form fields `username` and `password`.
PasswordFormDep = Annotated[OAuth2PasswordRequestForm, Depends()]


async def get_charging(request: Request) -> ChargingService:
    service: ChargingService = request.app.state.charging
    return service


async def get_commands(request: Request) -> ChargerCommands:
    commands: ChargerCommands = request.app.state.commands
    return commands


async def get_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    """The session factory, for services that keep no transaction open across a charger's
    answer."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    return sessions


async def get_local_lists(request: Request) -> LocalListSync:
    local_lists: LocalListSync = request.app.state.local_lists
    return local_lists


async def get_reservations(request: Request) -> ReservationService:
    reservations: ReservationService = request.app.state.reservations
    return reservations


async def get_payments(request: Request) -> PaymentService | None:
    """The card payment service, or None without a Stripe key (each route says what then)."""
    payments: PaymentService | None = getattr(request.app.state, "payments", None)
    return payments


async def get_outbound(request: Request) -> OutboundMessages:
    outbound: OutboundMessages = request.app.state.outbound
    return outbound


async def get_faq(request: Request) -> FaqCatalogue:
    faq: FaqCatalogue = request.app.state.faq
    return faq


async def get_desk(request: Request) -> SupportDesk:
    return SupportDesk.of(request.app)


ChargingDep = Annotated[ChargingService, Depends(get_charging)]
CommandsDep = Annotated[ChargerCommands, Depends(get_commands)]
SessionsDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessions)]
LocalListsDep = Annotated[LocalListSync, Depends(get_local_lists)]
ReservationsDep = Annotated[ReservationService, Depends(get_reservations)]
PaymentsDep = Annotated[PaymentService | None, Depends(get_payments)]
OutboundDep = Annotated[OutboundMessages, Depends(get_outbound)]
FaqDep = Annotated[FaqCatalogue, Depends(get_faq)]
DeskDep = Annotated[SupportDesk, Depends(get_desk)]


def _bad_input(loc: list[str | int], message: str) -> HTTPException:
    error = {"loc": loc, "msg": message, "type": "value_error"}
    return HTTPException(status_code=422, detail=[error])


def _refuse_in_json(value: Any, loc: list[str | int]) -> None:
    """Raise 422 for a NUL character or a non-finite number anywhere in a decoded JSON body."""
    if isinstance(value, str):
        if "\x00" in value:
            raise _bad_input(loc, "text must not contain NUL characters")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _bad_input(loc, "numbers must be finite (no NaN, Infinity or overflow)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_in_json(key, loc)
            _refuse_in_json(item, [*loc, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_in_json(item, [*loc, index])


_INTEGER = re.compile(r"\s*[+-]?\d+\s*")


def _int_params(request: Request, where: str) -> set[str]:
    """Names of the route's integer path or query parameters (`where`: "path" or "query")."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return set()
    params = dependant.path_params if where == "path" else dependant.query_params
    return {
        p.alias
        for p in params
        if p.field_info.annotation is int or int in get_args(p.field_info.annotation)
    }


def _outside_id_range(value: str) -> bool:
    digits = value.strip().lstrip("+")
    if digits.startswith("-") or len(digits.lstrip("0")) > len(str(MAX_ID)):
        return True
    return not 1 <= int(digits) <= MAX_ID


def _beyond_int32(value: str) -> bool:
    digits = value.strip().lstrip("+-").lstrip("0")
    return len(digits) > len(str(MAX_ID)) or (bool(digits) and int(digits) > MAX_ID)


async def refuse_unstorable_input(request: Request) -> None:
    """422 for input no database column can hold: NUL characters, non-finite numbers, ids.

    Python's json accepts NaN, Infinity and 1e400 (as inf), PostgreSQL refuses NUL in text,
    and an integer id beyond the column's range overflows the driver: all used to end in a
    500. Checked in the path, the query, a JSON body and a form's fields (names and text
    values), before the route's own validation (FastAPI has decoded, and cached, the body by
    then). Integer path parameters of every
    route behind this guard are held to 1..2^31-1, whether or not the route says `IdPath`.
    """
    int_params = _int_params(request, "path")
    for name, value in request.path_params.items():
        text = str(value)
        if "\x00" in text:
            raise _bad_input(["path", name], "must not contain NUL characters")
        if name in int_params and _INTEGER.fullmatch(text) and _outside_id_range(text):
            raise _bad_input(["path", name], f"an id is a whole number from 1 to {MAX_ID}")
    int_queries = _int_params(request, "query")
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            raise _bad_input(["query", name], "must not contain NUL characters")
        if name in int_queries and _INTEGER.fullmatch(value) and _beyond_int32(value):
            raise _bad_input(["query", name], f"at most {MAX_ID} in size")
    if request.method not in {"POST", "PUT", "PATCH"}:
        return
    content_type = request.headers.get("content-type", "")
    if "json" in content_type:
        try:
            body = await request.json()
        except ValueError:
            return  # not JSON at all: the route's validation says so
        _refuse_in_json(body, ["body"])
    elif content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # the route's own parse when it has form fields (cached)
        for name, value in form.multi_items():
            if "\x00" in name or (isinstance(value, str) and "\x00" in value):
                raise _bad_input(["body", name], "must not contain NUL characters")


InputGuard = Depends(refuse_unstorable_input)

_bearer = HTTPBearer(
    auto_error=False, description="ADMIN_TOKEN, or a staff token from POST /auth/token"
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


async def _staff_of(
    db: AsyncSession, settings: Settings, credentials: HTTPAuthorizationCredentials | None
) -> StaffUser | None:
    if not credentials:
        return None
    staff_id = staff_id_of(settings.secret_key, credentials.credentials)
    if staff_id is None:
        return None
    staff = await db.get(StaffUser, staff_id)
    return staff if staff is not None and staff.active else None


def _is_admin_token(settings: Settings, credentials: HTTPAuthorizationCredentials | None) -> bool:
    given = credentials.credentials.encode() if credentials else b""
    expected = settings.admin_token.encode()
    return bool(credentials and expected and hmac.compare_digest(given, expected))


async def require_admin(settings: SettingsDep, db: SessionDep, credentials: BearerDep) -> None:
    """Every /admin route: `Bearer <ADMIN_TOKEN>` (constant-time) or an operator's token."""
    if _is_admin_token(settings, credentials):
        return
    staff = await _staff_of(db, settings, credentials)
    if staff is None:
        raise _unauthorized("missing or wrong admin token")
    if staff.role != StaffRole.OPERATOR:
        raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail="operators only")


async def current_staff(
    request: Request, settings: SettingsDep, db: SessionDep, credentials: BearerDep
) -> StaffUser:
    """The support agent or operator behind the bearer token (401 for anyone else).

    Their input then passes `refuse_unstorable_input`, as the admin API's does.
    """
    staff = await _staff_of(db, settings, credentials)
    if staff is None:
        raise _unauthorized("missing, expired or wrong staff token")
    await refuse_unstorable_input(request)
    return staff


AdminDep = Depends(require_admin)
CurrentStaff = Annotated[StaffUser, Depends(current_staff)]


async def reviewer(settings: SettingsDep, db: SessionDep, credentials: BearerDep) -> str:
    """Who decides: the operator's email, else the admin token (the router let them in)."""
    if credentials is not None:
        staff_id = staff_id_of(settings.secret_key, credentials.credentials)
        staff = await db.get(StaffUser, staff_id) if staff_id is not None else None
        if staff is not None:
            return staff.email
    return ADMIN_TOKEN_ACTOR


ReviewerDep = Annotated[str, Depends(reviewer)]
