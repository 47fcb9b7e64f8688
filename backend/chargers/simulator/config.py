"""A simulated charge point's settings, its OCPP configuration keys and its protocol timings."""

from __future__ import annotations

from dataclasses import dataclass

OCPP16 = "ocpp1.6"
REMOTE_START_MODES = ("accept", "reject", "accept_without_start")

RESPONSE_TIMEOUT = 30.0  # seconds to wait for a CALLRESULT (ocpp's response_timeout)
OPEN_TIMEOUT = 15.0  # TCP + WebSocket handshake
CLOSE_TIMEOUT = 5.0
PING_INTERVAL = 60.0  # WebSocket keepalive; detects half-open links between Heartbeats
PING_TIMEOUT = 60.0
DEFAULT_HEARTBEAT = 300.0  # until the central system tells us otherwise
BOOT_ERROR_RETRY = 10.0  # BootNotification answered with a CALLERROR or not at all

# The configuration keys the simulator knows (GetConfiguration / ChangeConfiguration).
HEARTBEAT_KEY = "HeartbeatInterval"
METER_KEY = "MeterValueSampleInterval"
AUTHORIZATION_KEY = "AuthorizationKey"  # 1.6 security whitepaper: write-only, 16-20 bytes hex
TX_ATTEMPTS_KEY = "TransactionMessageAttempts"
TX_INTERVAL_KEY = "TransactionMessageRetryInterval"
SECURITY_PROFILE_KEY = "SecurityProfile"  # 1.6 security whitepaper: 0-3, never lowered


@dataclass
class SimulatorConfig:
    """Settings of one simulated charge point."""

    url: str  # central system endpoint base; "/<percent-encoded identity>" is appended
    charge_point_id: str
    password: str | None = None  # HTTP Basic auth, username = identity
    ca_file: str | None = None  # wss://: trust this CA's server certificates (profile 2)
    # 1: Basic auth; 2: the same over TLS; 3: its client certificate instead of the password.
    security_profile: int = 1
    connectors: int = 2
    power_kw: float = 11.0
    meter_interval: float = 10.0  # real seconds between MeterValues while charging
    battery_kwh: float = 60.0
    time_scale: float = 1.0  # simulated seconds per real second for the energy curve
    vendor: str = "chargebot"
    model: str = "SimCP-1"
    remote_start: str = "accept"  # "accept" | "reject" | "accept_without_start"
    reconnect: bool = True
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    response_timeout: float = RESPONSE_TIMEOUT  # no CALLRESULT by then: the call failed
    # OCPP 1.6 TransactionMessageAttempts / TransactionMessageRetryInterval: tries per
    # Start/StopTransaction or transaction MeterValues the central system fails to process,
    # waiting interval x previous attempts between them (also set by ChangeConfiguration).
    transaction_message_attempts: int = 5
    transaction_message_retry_interval: float = 10.0
    # OCPP 1.6 Local Auth List Management: False answers as a charger without it would.
    local_list: bool = True
    local_list_max_length: int = 1000  # LocalAuthListMaxLength
    send_local_list_max_length: int = 100  # SendLocalListMaxLength
    reservations: bool = True  # Reservation profile: False answers every ReserveNow Rejected
    cost_display: bool = False  # shows California Pricing messages (CustomDisplayCostAndPrice)
    diagnostics: bool = True  # False: GetDiagnostics finds nothing to upload (no fileName)
    # SupportedFileTransferProtocols it reports: "FTP" for a charger that cannot upload by HTTP
    file_transfer_protocols: str = "HTTP,HTTPS,FTP"
