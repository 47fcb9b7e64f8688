"""Request and response bodies of the admin API (field names are a public contract)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from backend.models import Billing, BootStatus, ConnectorType, IdTagStatus, Language
from backend.services import charger_keys

Text120 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text80 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
# A database id in a body: INTEGER columns (32-bit on PostgreSQL) hold 1..2^31-1.
DbId = Annotated[int, Field(ge=1, le=2**31 - 1)]
Minor = Annotated[int, Field(ge=0, le=1_000_000, description="Minor units incl. VAT (öre)")]
ChargerIdentity = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,47}$"),
    Field(description="OCPP charge point identity: letters, digits, . _ -; at most 48"),
]
# OCPP 1.6 security profiles 1/2: an operator's own key has 16-40 printable characters
# (backend/services/charger_keys.py); leave it out and the server generates one.
ChargerPassword = Annotated[str, AfterValidator(charger_keys.check_password)]

_CONNECTOR_ALIASES = {
    "type2": ConnectorType.TYPE2,
    "mennekes": ConnectorType.TYPE2,
    "iec621962": ConnectorType.TYPE2,
    "ccs": ConnectorType.CCS,
    "ccs2": ConnectorType.CCS,
    "combo2": ConnectorType.CCS,
    "chademo": ConnectorType.CHADEMO,
    "type1": ConnectorType.TYPE1,
}


def _connector_type(value: str) -> ConnectorType:
    key = "".join(ch for ch in value.lower() if ch.isalnum())
    if key not in _CONNECTOR_ALIASES:
        allowed = ", ".join(t.value for t in ConnectorType)
        raise ValueError(f"unknown connector type {value!r}; use one of {allowed}")
    return _CONNECTOR_ALIASES[key]


ConnectorTypeIn = Annotated[str, AfterValidator(_connector_type)]


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("give a time zone offset, e.g. 2026-12-31T23:59:00+01:00")
    return value.astimezone(UTC) if value is not None else None


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class _In(BaseModel):
    # Python's json reads NaN, Infinity and 1e400 (inf); no float field of ours means them.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class StationCreate(_In):
    name: Text120
    address: Text200
    city: Text80
    latitude: Latitude
    longitude: Longitude


class StationUpdate(_In):
    name: Text120 | None = None
    address: Text200 | None = None
    city: Text80 | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None


class TariffIn(_In):
    currency: Literal["SEK"] = "SEK"
    price_per_kwh_minor: Minor = 0
    price_per_minute_minor: Minor = 0
    session_fee_minor: Minor = 0
    idle_fee_per_minute_minor: Minor = 0
    idle_grace_minutes: Annotated[int, Field(ge=0, le=1440)] = 0
    # Drivers may reserve a free connector from the chat for this long (0: they may not).
    reservation_minutes: Annotated[int, Field(ge=0, le=120)] = 0
    reservation_fee_minor: Minor = 0  # added to the charge that uses the reservation


class TariffPublic(BaseModel):
    currency: str
    price_per_kwh_minor: int
    price_per_minute_minor: int
    session_fee_minor: int
    idle_fee_per_minute_minor: int
    idle_grace_minutes: int
    vat_rate_percent: int
    reservation_minutes: int = 0
    reservation_fee_minor: int = 0
    updated_at: datetime


class StationPublic(BaseModel):
    id: int
    name: str
    address: str
    city: str
    latitude: float
    longitude: float
    tariff: TariffPublic | None
    created_at: datetime


class ConnectorIn(_In):
    connector_id: Annotated[int, Field(ge=1, le=99)]
    connector_type: ConnectorTypeIn
    max_power_kw: Annotated[float, Field(gt=0, le=1000)]


class ChargerCreate(_In):
    id: ChargerIdentity
    station_id: int
    password: ChargerPassword | None = Field(
        default=None,
        description="The charger's own key (16-40 characters); leave it out and the server "
        "generates one, shown once as `key` in the response.",
    )
    connectors: Annotated[list[ConnectorIn], Field(min_length=1, max_length=20)]

    @field_validator("connectors")
    @classmethod
    def _distinct_connector_ids(cls, connectors: list[ConnectorIn]) -> list[ConnectorIn]:
        ids = [c.connector_id for c in connectors]
        if len(ids) != len(set(ids)):
            raise ValueError("connector_id values must be distinct")
        return connectors


class ChargerUpdate(_In):
    station_id: int | None = None
    password: ChargerPassword | None = Field(
        default=None,
        description="A key you set on the charger by hand; null removes the key (refused "
        "unless OCPP_ALLOW_UNSECURED). Prefer POST /admin/chargers/{id}/key.",
    )
    boot_status: BootStatus | None = None
    security_profile: Annotated[int, Field(ge=0, le=3)] | None = Field(
        default=None,
        description="The lowest OCPP security profile that admits it (1 key, 2 key over TLS, "
        "3 client certificate; 0 any). Raised by the charger's accepted SecurityProfile change "
        "and its first certificate connect; lower it to let a replaced charger in.",
    )


class ChargerKeyRotate(_In):
    handshake: bool = Field(
        default=True,
        description="Send the new key to the connected charger (ChangeConfiguration "
        "AuthorizationKey) and switch when it accepts; false: switch now (configure by hand).",
    )


class ConnectorPublic(BaseModel):
    connector_id: int
    code: str
    connector_type: str
    max_power_kw: float
    status: str
    error_code: str


class ChargerPublic(BaseModel):
    id: str
    station_id: int | None
    online: bool
    boot_status: str
    last_seen_at: datetime | None
    status: str | None = Field(description="StatusNotification of connector 0 (whole charger)")
    error_code: str | None
    has_password: bool
    has_key: bool
    key_rotation_pending: bool = False
    security_profile: int = Field(
        default=0, description="The lowest security profile that admits it (0: any)."
    )
    key: str | None = Field(
        default=None,
        description="The charger's new AuthorizationKey: only in the answer that made it.",
    )
    vendor: str | None
    model: str | None
    serial_number: str | None
    firmware_version: str | None
    connectors: list[ConnectorPublic]


class DriverCreate(_In):
    name: Text120
    phone: str | None = None
    telegram_user_id: Annotated[int, Field(gt=0, lt=2**52)] | None = None
    language: Language = Language.SV
    billing: Billing = Billing.PAY_PER_SESSION


class DriverUpdate(_In):
    name: Text120 | None = None
    phone: str | None = None
    telegram_user_id: Annotated[int, Field(gt=0, lt=2**52)] | None = None
    language: Language | None = None
    billing: Billing | None = None
    blocked: bool | None = None


class DriverPublic(BaseModel):
    id: int
    name: str
    phone: str | None
    telegram_user_id: int | None
    language: str
    billing: str
    blocked: bool
    stripe_customer_id: str | None = None
    has_saved_card: bool = False
    plan: str = "payg"
    created_at: datetime


# OCPP IdToken: CiString20 (compared case-insensitively), printable ASCII.
IdTagValue = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[\x21-\x7e]{1,20}$")
]


class IdTagCreate(_In):
    id_tag: IdTagValue
    expires_at: AwareDatetime | None = None


class IdTagUpdate(_In):
    status: IdTagStatus | None = None
    expires_at: AwareDatetime | None = None


class IdTagPublic(BaseModel):
    id: int
    id_tag: str
    driver_id: int
    status: str
    expires_at: datetime | None
    created_at: datetime


class PaymentPublic(BaseModel):
    """A session's card payment; `amount_uncollected_minor` is cost above the hold (flagged)."""

    id: int
    method: str
    status: str
    currency: str
    amount_authorized_minor: int
    amount_captured_minor: int
    amount_refunded_minor: int
    amount_uncollected_minor: int
    refund_count: int
    stripe_checkout_session_id: str | None
    stripe_payment_intent_id: str | None


class RefundRequest(BaseModel):
    amount_minor: int | None = Field(default=None, gt=0, description="Default: all that is left.")


class SessionPublic(BaseModel):
    id: int
    driver_id: int | None
    charger_id: str
    connector_id: int
    transaction_id: int | None
    status: str
    failure_reason: str | None
    energy_wh: int
    cost_minor: int | None
    currency: str
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    payment: PaymentPublic | None = None


class SessionAdminPublic(SessionPublic):
    """A session with its meter figures and, for one under meter review, both energies.

    `status` `needs_review`: `energy_wh` and `cost_minor` are the plausible amount billed so
    far, `measured_energy_wh` what the charger claimed; `reviewed_*` once an operator decided.
    """

    meter_start_wh: int | None = None
    meter_stop_wh: int | None = None
    measured_energy_wh: int | None = None
    review_reason: str | None = None
    reviewed_at: datetime | None = None
    reviewed_by: str | None = None


class SessionReviewIn(_In):
    """An operator's decision on a session under meter review."""

    decision: Literal["keep_plausible", "accept_measured", "set_energy"] = Field(
        description="keep_plausible: bill what was billed; accept_measured: bill what the "
        "charger measured; set_energy: bill `energy_wh`."
    )
    energy_wh: int | None = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description="set_energy only: the energy to bill, 0 to the measured energy.",
    )

    @model_validator(mode="after")
    def _energy_with_set_energy(self) -> SessionReviewIn:
        if (self.decision == "set_energy") != (self.energy_wh is not None):
            raise ValueError("energy_wh is given with decision set_energy, and only then")
        return self
