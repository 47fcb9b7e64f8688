"""SQLModel tables for the domain. Money is integer öre; times are timezone-aware UTC."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from backend.db import UTCDateTime, utcnow
from backend.lifecycles import ACTIVE_SESSION_STATUSES as ACTIVE_SESSION_STATUSES
from backend.lifecycles import ConversationMode as ConversationMode
from backend.lifecycles import PaymentStatus as PaymentStatus
from backend.lifecycles import QueueStatus as QueueStatus
from backend.lifecycles import ReservationStatus as ReservationStatus
from backend.lifecycles import SessionStatus as SessionStatus
from backend.lifecycles import sql_in

# Stable constraint names, so migrations can refer to them on every backend.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class ConnectorType(StrEnum):
    TYPE2 = "type2"
    CCS = "ccs"
    CHADEMO = "chademo"
    TYPE1 = "type1"


class Billing(StrEnum):
    PAY_PER_SESSION = "pay_per_session"
    CARD_ON_FILE = "card_on_file"
    INVOICE = "invoice"


class Language(StrEnum):
    SV = "sv"
    EN = "en"


class BootStatus(StrEnum):
    """How the central system answers this charger's BootNotification."""

    ACCEPTED = "Accepted"
    PENDING = "Pending"
    REJECTED = "Rejected"


class IdTagStatus(StrEnum):
    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"


class EscalationReason(StrEnum):
    """Why a conversation entered the support queue."""

    ASKED = "asked"  # /support, SUPPORT by SMS
    FAQ_MISS = "faq_miss"  # "talk to a person" after the FAQ had no answer
    START_FAILED = "start_failed"
    PAYMENT_PROBLEM = "payment_problem"


class StaffRole(StrEnum):
    OPERATOR = "operator"
    SUPPORT = "support"


E = TypeVar("E", bound=StrEnum)


class EnumString(TypeDecorator[E]):
    """A StrEnum stored as its value in a VARCHAR(length): the schema is a plain string column,
    rows come back as the enum, and a value outside it is refused (ValueError) on the way in."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Any) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Any) -> E | None:
        return None if value is None else self.enum(value)


def _created(*, index: bool = False) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=index)


def _fk(target: str, *, nullable: bool = False, ondelete: str | None = None) -> Any:
    """A foreign-key column; kept explicit so the migration names match the model."""
    column_type = String(64) if target.startswith("charger.") else Integer()
    return Field(
        default=None if nullable else ...,
        sa_column=Column(
            column_type, ForeignKey(target, ondelete=ondelete), nullable=nullable, index=True
        ),
    )


class StationAccess(StrEnum):
    PUBLIC = "public"
    RESTRICTED = "restricted"


class Station(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    address: str = Field(max_length=200)
    city: str = Field(max_length=80, index=True)
    latitude: float
    longitude: float
    access: str = Field(
        default=StationAccess.PUBLIC,
        sa_column=Column(String(12), nullable=False, server_default="public"),
    )
    # [{"days": [0..6 (Monday=0)], "open": "06:00", "close": "22:00"}] in Europe/Stockholm time;
    # null means always open.
    opening_hours: list[dict[str, Any]] | None = Field(default=None, sa_type=JSON)
    # The most the site may draw (kW), shared by its chargers (smart charging); None: no cap.
    max_power_kw: float | None = None
    created_at: datetime = _created()


class DriverGroup(SQLModel, table=True):
    """Drivers who share access: a housing association's residents, a company's fleet."""

    __tablename__ = "driver_group"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(120), nullable=False, unique=True))
    created_at: datetime = _created()


class GroupMembership(SQLModel, table=True):
    __tablename__ = "group_membership"
    __table_args__ = (UniqueConstraint("group_id", "driver_id"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = _fk("driver_group.id", ondelete="CASCADE")
    driver_id: int = _fk("driver.id", ondelete="CASCADE")


class StationGroup(SQLModel, table=True):
    """A group allowed at a restricted station."""

    __tablename__ = "station_group"
    __table_args__ = (UniqueConstraint("station_id", "group_id"),)

    id: int | None = Field(default=None, primary_key=True)
    station_id: int = _fk("station.id", ondelete="CASCADE")
    group_id: int = _fk("driver_group.id", ondelete="CASCADE")


class Tariff(SQLModel, table=True):
    """A station's price list. Prices include VAT, in minor units (450 = 4.50 SEK)."""

    id: int | None = Field(default=None, primary_key=True)
    station_id: int = Field(
        sa_column=Column(
            Integer(), ForeignKey("station.id", ondelete="CASCADE"), nullable=False, unique=True
        )
    )
    currency: str = Field(default="SEK", max_length=3)
    price_per_kwh_minor: int = 0
    price_per_minute_minor: int = 0
    session_fee_minor: int = 0
    idle_fee_per_minute_minor: int = 0
    idle_grace_minutes: int = 0
    vat_rate_percent: int = 25
    # Drivers may reserve a free connector from the chat for this long (0: they may not),
    # for this fee, added to the charge that uses the reservation.
    reservation_minutes: int = Field(
        default=0, sa_column=Column(Integer(), nullable=False, server_default="0")
    )
    reservation_fee_minor: int = Field(
        default=0, sa_column=Column(Integer(), nullable=False, server_default="0")
    )
    updated_at: datetime = _created()


class Charger(SQLModel, table=True):
    """A charge point; `id` is its OCPP identity (the last path segment of its URL)."""

    id: str = Field(primary_key=True, max_length=64)
    station_id: int | None = _fk("station.id", nullable=True)  # None: auto-registered, unplaced
    # The charger's AuthorizationKey (HTTP basic password) as a keyed hash; legacy argon2 hashes
    # are replaced on the next successful connect. None: no key (refused unless allowed).
    password_hash: str | None = Field(default=None, max_length=200)
    # A rotated key sent by ChangeConfiguration AuthorizationKey, used once the charger confirms.
    pending_key_hash: str | None = Field(default=None, max_length=200)
    # The lowest OCPP security profile it may connect with (1 Basic auth, 2 the same over TLS,
    # 3 its client certificate): raised by an accepted ChangeConfiguration SecurityProfile and
    # to 3 by its first client-certificate connect, never lowered but by an operator. 0: any.
    security_profile: int = 0
    # SHA-256 (hex) of the client certificate we signed for it and it accepted: the only one
    # that admits it with security profile 3.
    client_certificate_sha256: str | None = Field(default=None, max_length=64)
    boot_status: str = Field(default=BootStatus.ACCEPTED, sa_type=String(16))
    vendor: str | None = Field(default=None, max_length=50)
    model: str | None = Field(default=None, max_length=50)
    serial_number: str | None = Field(default=None, max_length=50)
    firmware_version: str | None = Field(default=None, max_length=50)
    online: bool = False
    last_seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Connector 0 of StatusNotification: the charge point as a whole.
    status: str | None = Field(default=None, sa_type=String(20))
    error_code: str | None = Field(default=None, sa_type=String(30))
    created_at: datetime = _created()


class ChargerConfigurationKey(SQLModel, table=True):
    """A configuration key as its charger last reported it (GetConfiguration) or accepted it
    (ChangeConfiguration). OCPP 1.6 CiString50 keys, CiString500 values."""

    __tablename__ = "charger_configuration_key"

    charger_id: str = Field(
        sa_column=Column(String(64), ForeignKey("charger.id", ondelete="CASCADE"), primary_key=True)
    )
    key: str = Field(primary_key=True, max_length=50)
    value: str | None = Field(default=None, max_length=500)
    readonly: bool = False
    reported_at: datetime = Field(sa_type=UTCDateTime)


class LocalListEntry(SQLModel, table=True):
    """One id tag of a published local authorization list (OCPP 1.6 SendLocalList).

    `scope` is whose list: "public" for the chargers of every public station, "station:<id>"
    for a members-only station's. `version` is the list version that last changed the entry;
    a removed tag stays as a tombstone (`status` None) so differential updates can remove it.
    """

    __tablename__ = "local_list_entry"

    scope: str = Field(primary_key=True, max_length=32)
    id_tag: str = Field(primary_key=True, max_length=20)
    status: str | None = Field(default=None, sa_type=String(16))  # Accepted|Blocked|Expired
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    version: int = Field(index=True)


class LocalListScope(SQLModel, table=True):
    """The current version of one scope's local authorization list."""

    __tablename__ = "local_list_scope"

    scope: str = Field(primary_key=True, max_length=32)
    version: int = 1
    published_at: datetime = _created()


class ChargerLocalList(SQLModel, table=True):
    """What a charger holds of its local authorization list, as far as we know."""

    __tablename__ = "charger_local_list"

    charger_id: str = Field(
        sa_column=Column(String(64), ForeignKey("charger.id", ondelete="CASCADE"), primary_key=True)
    )
    scope: str | None = Field(default=None, max_length=32)  # the list it was last sent
    version: int = 0  # the version it accepted; 0: none
    outcome: str | None = Field(default=None, max_length=32)  # its last answer, or why not sent
    synced_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Connector(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("charger_id", "connector_id"),)

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str = _fk("charger.id", ondelete="CASCADE")
    connector_id: int
    code: str = Field(sa_column=Column(String(8), nullable=False, unique=True))
    connector_type: str = Field(sa_type=String(16))
    max_power_kw: float
    status: str = Field(default="Unavailable", sa_type=String(20))
    error_code: str = Field(default="NoError", sa_type=String(30))
    status_updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Driver(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    phone: str | None = Field(
        default=None, sa_column=Column(String(20), unique=True, nullable=True)
    )
    telegram_user_id: int | None = Field(
        default=None, sa_column=Column(BigInteger(), unique=True, nullable=True)
    )
    language: str = Field(default=Language.SV, sa_type=String(2))
    billing: str = Field(default=Billing.PAY_PER_SESSION, sa_type=String(20))
    blocked: bool = False
    stripe_customer_id: str | None = Field(default=None, max_length=64)
    # The card saved through a Checkout Session in setup mode (billing card_on_file).
    stripe_payment_method_id: str | None = Field(default=None, max_length=255)
    # "payg" or "member": kept in step with the driver's Stripe subscription by its webhooks.
    plan: str = Field(
        default="payg", sa_column=Column(String(16), nullable=False, server_default="payg")
    )
    created_at: datetime = _created()


class IdTag(SQLModel, table=True):
    """An RFID card or virtual token (OCPP IdToken, at most 20 characters)."""

    __tablename__ = "id_tag"

    id: int | None = Field(default=None, primary_key=True)
    id_tag: str = Field(sa_column=Column(String(20), nullable=False, unique=True))
    driver_id: int = _fk("driver.id", ondelete="CASCADE")
    status: str = Field(default=IdTagStatus.ACCEPTED, sa_type=String(16))
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # A chat driver's token: valid only for the transaction its own RemoteStart asked for.
    virtual: bool = Field(
        default=False, sa_column=Column(Boolean(), nullable=False, server_default=text("false"))
    )
    created_at: datetime = _created()


class ChargingSession(SQLModel, table=True):
    """One charge from request to receipt; the OCPP transactionId is issued from this row."""

    __tablename__ = "charging_session"
    __table_args__ = (
        # At most one active session per connector, enforced by the database itself.
        Index(
            "uq_charging_session_active_connector",
            "charger_id",
            "connector_id",
            unique=True,
            sqlite_where=text(f"status IN ({sql_in(ACTIVE_SESSION_STATUSES)})"),
            postgresql_where=text(f"status IN ({sql_in(ACTIVE_SESSION_STATUSES)})"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    driver_id: int | None = _fk("driver.id", nullable=True)
    charger_id: str = _fk("charger.id")
    connector_id: int
    id_tag: str | None = Field(default=None, max_length=20)
    transaction_id: int | None = Field(
        default=None, sa_column=Column(Integer(), unique=True, nullable=True)
    )
    status: SessionStatus = Field(
        default=SessionStatus.PENDING, sa_type=EnumString(SessionStatus, 16), index=True
    )
    failure_reason: str | None = Field(default=None, max_length=200)
    channel: str | None = Field(default=None, max_length=16)
    meter_start_wh: int | None = None
    meter_stop_wh: int | None = None
    energy_wh: int = 0
    # What the charger reported when it was implausible (status needs_review); energy_wh then
    # holds the plausible amount that was billed.
    measured_energy_wh: int | None = None
    review_reason: str | None = Field(default=None, max_length=200)
    reviewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reviewed_by: str | None = Field(default=None, max_length=254)
    power_w: float | None = None
    cost_minor: int | None = None
    currency: str = Field(default="SEK", max_length=3)
    tariff_snapshot: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    cost_breakdown: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    transaction_data: list[Any] | None = Field(default=None, sa_type=JSON)
    stop_reason: str | None = Field(default=None, max_length=30)
    start_deadline_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    idle_warning_sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = _created()
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    charging_finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    stopped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = _created(index=True)  # the console's live views watch it


class MeterSample(SQLModel, table=True):
    __tablename__ = "meter_sample"

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = _fk("charging_session.id", ondelete="CASCADE")
    measurand: str = Field(max_length=50)
    value: float
    unit: str | None = Field(default=None, max_length=10)
    phase: str | None = Field(default=None, max_length=10)
    sampled_at: datetime = Field(sa_type=UTCDateTime)


class Reservation(SQLModel, table=True):
    """A connector held for an id tag until `expires_at` (OCPP 1.6 ReserveNow); its id is the
    reservationId the charger is given. `connector_id` 0: any connector of the charger."""

    __tablename__ = "reservation"
    __table_args__ = (Index("ix_reservation_charger_status", "charger_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str = _fk("charger.id", ondelete="CASCADE")
    connector_id: int
    id_tag: str = Field(max_length=20)
    driver_id: int | None = _fk("driver.id", nullable=True, ondelete="SET NULL")
    status: str = Field(default=ReservationStatus.REQUESTED, sa_type=String(16))
    outcome: str | None = Field(default=None, max_length=32)  # the charger's answer, or why
    expires_at: datetime = Field(sa_type=UTCDateTime)
    session_id: int | None = None  # the session that used it
    fee_minor: int = Field(  # added to that session's cost (a driver's reservation)
        default=0, sa_column=Column(Integer(), nullable=False, server_default="0")
    )
    requested_by: str | None = Field(default=None, max_length=254)
    created_at: datetime = _created()
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When its connector first reported Reserved after it was requested: only then does an
    # Available report mean the charger let it go (services/reservations.py).
    reserved_seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ChargerJob(SQLModel, table=True):
    """A file a charger fetches or uploads at an operator's request: a firmware update
    (UpdateFirmware, SignedUpdateFirmware) or an upload of its diagnostics or logs
    (GetDiagnostics, GetLog). Its id is the requestId of the security extension's messages;
    `status` is the charger's last word on it (its answer, then its status notifications)."""

    __tablename__ = "charger_job"

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str = _fk("charger.id", ondelete="CASCADE")
    kind: str = Field(sa_type=String(20))  # firmware | signed_firmware | diagnostics | log
    status: str = Field(default="requested", sa_type=String(32))
    location: str = Field(max_length=512)  # where the charger fetches from / uploads to
    upload_token_hash: str | None = Field(default=None, max_length=64, index=True)
    file_name: str | None = Field(default=None, max_length=255)  # as the charger named it
    stored_as: str | None = Field(default=None, max_length=512)  # the upload received
    file_size: int | None = None
    requested_by: str | None = Field(default=None, max_length=254)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class ChargerJobStatus(SQLModel, table=True):
    """One word of a charger on a job (its answer, a status notification), appended only."""

    __tablename__ = "charger_job_status"

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = _fk("charger_job.id", ondelete="CASCADE")
    status: str = Field(sa_type=String(32))
    at: datetime = Field(sa_type=UTCDateTime)


class ChargingProfileRecord(SQLModel, table=True):
    """A charging profile sent to a charger (SetChargingProfile, or with a RemoteStart); its
    id is the chargingProfileId. `status` is the charger's answer; `cleared_at` set once a
    ClearChargingProfile removed it (or a newer one of the same purpose and level replaced it)."""

    __tablename__ = "charging_profile"

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str = _fk("charger.id", ondelete="CASCADE")
    connector_id: int
    purpose: str = Field(sa_type=String(24))
    stack_level: int
    profile: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # as sent (snake_case)
    source: str = Field(default="operator", sa_type=String(16))  # operator|station_limit|session
    status: str = Field(default="requested", sa_type=String(24))
    requested_by: str | None = Field(default=None, max_length=254)
    created_at: datetime = _created()
    cleared_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class QueueEntry(SQLModel, table=True):
    """A driver waiting for a connector at a busy station (the chat's queue). When one frees
    up, the first in line is offered it: reserved for them (`reservation_id`) until
    `offer_expires_at`, then the next is told."""

    __tablename__ = "queue_entry"
    __table_args__ = (Index("ix_queue_entry_station_status", "station_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    station_id: int = _fk("station.id", ondelete="CASCADE")
    driver_id: int = _fk("driver.id", ondelete="CASCADE")
    channel: str = Field(max_length=16)
    status: str = Field(default=QueueStatus.WAITING, sa_type=String(12))
    reservation_id: int | None = None
    connector_code: str | None = Field(default=None, max_length=8)
    offered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    offer_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = _created()
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SecurityEvent(SQLModel, table=True):
    """A SecurityEventNotification (OCPP 1.6 security whitepaper), kept for the operator."""

    __tablename__ = "security_event"

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str = _fk("charger.id", ondelete="CASCADE")
    type: str = Field(max_length=50)
    tech_info: str | None = Field(default=None, max_length=255)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = _created()


class OrphanTransaction(SQLModel, table=True):
    """A StopTransaction for a transaction we never issued (unknown id or -1): kept, answered."""

    __tablename__ = "orphan_transaction"

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str = Field(max_length=64, index=True)
    transaction_id: int | None = None
    meter_stop_wh: int | None = None
    stopped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    received_at: datetime = _created()


class Payment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    session_id: int | None = _fk("charging_session.id", nullable=True)
    driver_id: int | None = _fk("driver.id", nullable=True)
    method: str = Field(sa_type=String(20))
    status: PaymentStatus = Field(
        default=PaymentStatus.PENDING, sa_type=EnumString(PaymentStatus, 16)
    )
    currency: str = Field(default="SEK", max_length=3)
    amount_authorized_minor: int = 0
    amount_captured_minor: int = 0
    amount_refunded_minor: int = 0
    # Cost above the hold that could not be captured: flagged for follow-up by staff.
    amount_uncollected_minor: int = Field(
        default=0, sa_column=Column(Integer(), nullable=False, server_default="0")
    )
    refund_count: int = Field(
        default=0, sa_column=Column(Integer(), nullable=False, server_default="0")
    )
    stripe_checkout_session_id: str | None = Field(default=None, max_length=255, index=True)
    stripe_payment_intent_id: str | None = Field(default=None, max_length=255, index=True)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Conversation(SQLModel, table=True):
    """One chat per (channel, address): where the driver is in a flow and who answers."""

    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    address: str = Field(max_length=64)
    driver_id: int | None = _fk("driver.id", nullable=True)
    language: str = Field(default=Language.SV, sa_type=String(2))
    state: str | None = Field(default=None, max_length=64)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    mode: ConversationMode = Field(
        default=ConversationMode.BOT, sa_type=EnumString(ConversationMode, 10), index=True
    )
    assigned_to: int | None = _fk("staff_user.id", nullable=True)
    waiting_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    escalation_reason: str | None = Field(default=None, sa_type=String(20))
    escalation_detail: str | None = Field(default=None, sa_type=String(200))
    version: int = 0
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Message(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = _fk("conversation.id", ondelete="CASCADE")
    direction: str = Field(sa_type=String(3))
    author: str = Field(sa_type=String(10))
    staff_id: int | None = _fk("staff_user.id", nullable=True)
    text: str = Field(sa_type=Text)
    created_at: datetime = _created()


class StaffUser(SQLModel, table=True):
    __tablename__ = "staff_user"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_column=Column(String(254), nullable=False, unique=True))
    name: str = Field(max_length=120)
    role: str = Field(sa_type=String(10))
    password_hash: str = Field(max_length=200)
    active: bool = True
    created_at: datetime = _created()


class StaffAudit(SQLModel, table=True):
    """What staff did or read that touches a driver: transcript reads, claims, overrides."""

    __tablename__ = "staff_audit"

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int | None = _fk("staff_user.id", nullable=True)
    actor: str = Field(max_length=254)  # the staff email, or "admin-token"
    action: str = Field(sa_type=String(32))
    conversation_id: int | None = Field(default=None, index=True)
    reason: str | None = Field(default=None, max_length=300)
    created_at: datetime = _created(index=True)


class ReadinessProbe(SQLModel, table=True):
    """One row /readyz rewrites to prove the database takes writes."""

    __tablename__ = "readiness_probe"

    id: int = Field(primary_key=True)
    checked_at: datetime = _created()


class ProcessedEvent(SQLModel, table=True):
    """A webhook or inbound message already handled (Stripe event, Twilio MessageSid, ...)."""

    __tablename__ = "processed_event"
    __table_args__ = (UniqueConstraint("source", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=16)
    event_id: str = Field(max_length=255)
    processed_at: datetime = _created()


class SmsDelivery(SQLModel, table=True):
    """An outbound SMS handed to Twilio, with its latest delivery status (status callbacks).

    Also what the per-number hourly cap counts. A send that failed for good has no MessageSid.
    """

    __tablename__ = "sms_delivery"

    id: int | None = Field(default=None, primary_key=True)
    message_sid: str | None = Field(
        default=None, sa_column=Column(String(64), unique=True, nullable=True)
    )
    to_number: str = Field(max_length=20, index=True)
    status: str = Field(max_length=20)
    error_code: str | None = Field(default=None, max_length=16)
    segments: int = 1
    created_at: datetime = _created()
    updated_at: datetime = _created()
