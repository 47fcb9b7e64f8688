"""All configuration in one pydantic-settings class, read from the environment and `.env`."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.services.support_hours import parse_windows, parse_zone

DEFAULT_DATABASE_URL = "sqlite:///./var/chargebot.sqlite3"
DEV_ADMIN_TOKEN = "dev-admin-token"
DEV_SECRET_KEY = "dev-secret-key-for-development-only"
MIN_SECRET_LENGTH = 32  # characters of ADMIN_TOKEN, SECRET_KEY, TELEGRAM_WEBHOOK_SECRET
_PLACEHOLDER_SECRETS = {
    "",
    "changeme",
    "change-me",
    "changethis",
    "secret",
    DEV_ADMIN_TOKEN,
    DEV_SECRET_KEY,
    "dev-secret-key",
}


class ConfigurationError(RuntimeError):
    """A setting is missing or unsafe; the message names the variable."""


class Settings(BaseSettings):
    """Every setting the app reads. Variable names are the field names in upper case."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Literal["development", "production"] = "production"
    database_url: str = DEFAULT_DATABASE_URL
    admin_token: str = ""
    secret_key: str = Field(default="", description="Signs staff access tokens (HS256).")
    staff_token_hours: float = Field(
        default=8.0, gt=0, description="Hours a staff access token from /auth/token is valid."
    )
    public_base_url: str = "http://127.0.0.1:8000"

    telegram_bot_username: str = "chargebot_demo_bot"
    telegram_bot_token: str = ""
    telegram_mode: Literal["polling", "webhook"] = "webhook"
    telegram_webhook_secret: str = ""
    telegram_base_url: str = Field(
        default="", description="python-telegram-bot base_url, e.g. http://127.0.0.1:8081/bot"
    )
    sms_number: str = Field(default="", description="Number drivers text; printed on stickers.")
    default_phone_region: str = "SE"

    twilio_account_sid: str = Field(default="", description="Twilio account SID (AC...).")
    twilio_auth_token: str = Field(
        default="", description="Signs Twilio's webhooks and authenticates the REST client."
    )
    twilio_from_number: str = Field(default="", description="E.164 sender for outbound SMS.")
    twilio_messaging_service_sid: str = Field(
        default="", description="Messaging Service (MG...); wins over TWILIO_FROM_NUMBER."
    )
    sms_hourly_cap: int = Field(
        default=20, ge=1, description="Outbound SMS per number and hour; more are dropped."
    )
    sms_reply_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds the webhook waits for the answer; later ones go out by REST.",
    )

    stripe_api_key: str = Field(default="", description="Stripe secret key; empty: no cards.")
    stripe_webhook_secret: str = Field(
        default="", description="Signing secret (whsec_...) of the Stripe webhook endpoint."
    )
    stripe_api_base: str = Field(
        default="", description="Stripe API base URL override (stripe-mock, a local double)."
    )
    member_price_per_kwh_discount_percent: int = Field(
        default=0, ge=0, le=90, description="Member plan: % off the price per kWh; 0: no plan."
    )
    member_monthly_fee_minor: int = Field(
        default=0, ge=0, description="Member plan's monthly fee (öre), as shown to drivers."
    )
    stripe_member_price_id: str = Field(
        default="", description="The member plan's recurring Stripe Price (price_...)."
    )
    stripe_hold_amount_minor: int = Field(
        default=30000, ge=100, description="Amount held on the card before a start (öre)."
    )

    support_hours: str = Field(
        default="Mon-Fri 08:00-17:00",
        description="When support is on duty: 'Mon-Fri 08:00-17:00, Sat 10:00-14:00' or '24/7'.",
    )
    support_timezone: str = Field(
        default="Europe/Stockholm", description="IANA time zone of SUPPORT_HOURS."
    )

    console_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often the console's live views look for news."
    )

    faq_file: str = Field(default="", description="FAQ YAML; default data/faq.yaml")
    live_status_interval: float = Field(default=10.0, gt=0, description="Seconds between edits.")

    ocpp_auto_register: bool = False
    ocpp_allow_unsecured: bool | None = Field(
        default=None,
        description="Accept chargers that have no key (no HTTP Basic auth) - labs only. "
        "Default: on in development, off in production.",
    )
    ocpp_key_pepper: str = Field(
        default="",
        description="Server-side secret of the charger keys' HMAC; empty: derived from "
        "SECRET_KEY. Changing it (or SECRET_KEY while it is empty) invalidates every key.",
    )
    ocpp_max_message_bytes: int = Field(
        default=65536, ge=4096, description="Largest OCPP WebSocket frame; larger ones close."
    )
    ocpp_call_timeout: float = Field(default=30.0, gt=0, description="Seconds to await a charger.")
    ocpp_start_timeout: float = Field(
        default=120.0, gt=0, description="Seconds from an accepted RemoteStart to StartTransaction."
    )
    ocpp_heartbeat_interval: int = Field(default=300, ge=10)
    # Connect storms (README "Connect cost and admission control").
    ocpp_key_cache_seconds: float = Field(
        default=60.0, ge=0, description="Seconds a verified charger key skips the hash; 0: off."
    )
    ocpp_key_cache_size: int = Field(
        default=20000, ge=0, description="Chargers whose verified key is remembered (LRU)."
    )
    ocpp_last_seen_flush_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Seconds between writes of coalesced last-seen."
    )
    ocpp_boot_capacity: int = Field(
        default=1000, ge=1, description="Boots being written at once; more are answered Pending."
    )
    ocpp_boot_retry_seconds: int = Field(
        default=10, ge=1, description="Pending boot's retry interval (plus up to as much jitter)."
    )
    ocpp_status_trigger_seconds: float = Field(
        default=10.0,
        ge=0,
        description="A connected charger silent this long (no boot, no status) is asked for "
        "its connector statuses (TriggerMessage); 0: at once.",
    )
    tls_certfile: str = Field(
        default="",
        description="PEM certificate (chain) `chargebot serve` offers: HTTPS and wss:// "
        "(OCPP security profile 2); empty: plain HTTP, e.g. behind a TLS proxy.",
    )
    tls_keyfile: str = Field(default="", description="The private key of TLS_CERTFILE.")
    tls_client_cafile: str = Field(
        default="",
        description="CA certificate(s) whose client certificates identify chargers (OCPP "
        "security profile 3; usually OCPP_CA_CERTFILE); needs TLS_CERTFILE. Clients without a "
        "certificate (browsers, webhooks, profile 1/2 chargers) still connect.",
    )
    ocpp_ca_certfile: str = Field(
        default="",
        description="The CA certificate that signs chargers' CSRs (SignCertificate); empty: "
        "SignCertificate is answered Rejected.",
    )
    ocpp_ca_keyfile: str = Field(default="", description="The private key of OCPP_CA_CERTFILE.")
    ocpp_client_cert_days: int = Field(
        default=365, ge=1, le=3650, description="Validity of the certificates signed for chargers."
    )
    upload_dir: str = Field(
        default="./var/uploads",
        description="Where chargers' diagnostics and log uploads are kept (GetDiagnostics, "
        "GetLog).",
    )
    max_upload_bytes: int = Field(
        default=50 * 1024 * 1024, ge=1024, description="Largest upload a charger may send."
    )
    ftp_upload_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Serve FTP uploads (diagnostics, logs) on this port for chargers that "
        "cannot upload by HTTP; 0: no FTP.",
    )
    ftp_bind_host: str = Field(default="0.0.0.0", description="Address the FTP server binds.")
    ftp_public_host: str = Field(
        default="",
        description="Host name chargers reach the FTP server at; empty: PUBLIC_BASE_URL's.",
    )
    ftp_passive_ports: str = Field(
        default="",
        pattern=r"^(\d{1,5}-\d{1,5})?$",
        description="Passive data ports as FIRST-LAST (open them in the firewall); empty: any.",
    )
    queue_claim_minutes: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="How long a freed connector is held for the driver first in a station's "
        "queue before it goes to the next.",
    )
    charger_sync_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Every this many seconds, connected chargers whose local authorization "
        "list is behind get the difference (SendLocalList), and those that missed their "
        "station's power limit get it; 0: only when an operator asks.",
    )
    charger_upkeep_per_second: float = Field(
        default=20.0,
        gt=0,
        description="The upkeep's first contact with chargers (configuration read, local list "
        "sync) starts at most this many times a second per process: a network of 10,000 new "
        "chargers is caught up in about 17 minutes while their answers stay fast.",
    )
    gc_full_pass_seconds: float = Field(
        default=600.0,
        ge=0,
        description="Survivors of full garbage collections are frozen; every this many seconds "
        "all is thawed and collected once (backend/collector.py); 0: Python's own collection.",
    )
    loop_stall_log_ms: float = Field(
        default=500.0,
        ge=0,
        description="A stall of the event loop (no charger answered) at least this long is "
        "logged with the code that held it (backend/loop_watch.py); 0: not watched.",
    )
    ocpp_handler_concurrency: int = Field(
        default=4, ge=1, description="OCPP messages using the database at once (of the pool)."
    )
    # Meter plausibility (backend/services/plausibility.py): energy above connector power ×
    # elapsed time × (1 + tolerance) + slack is not billed; the session awaits an operator.
    meter_power_tolerance: float = Field(
        default=0.1, ge=0, description="Share above a connector's max power still plausible."
    )
    meter_slack_wh: int = Field(
        default=1000, ge=0, description="Wh plausible on top (meter resolution, clock jitter)."
    )
    idle_warning_minutes: int = Field(default=5, ge=0, description="Notice before idle fees.")
    sweep_interval: float = Field(default=5.0, gt=0, description="Seconds between timer checks.")
    # Scale-out (several server processes): see README "Production layout".
    redis_url: str = Field(
        default="", description="redis://host:6379/0; empty: one process, in-process relay."
    )
    redis_key_prefix: str = Field(
        default="chargebot:", description="Prefix of every Redis key and channel."
    )
    redis_lease_seconds: float = Field(
        default=15.0, gt=0, description="Charger lease; offline this long after a crash."
    )

    @field_validator("public_base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("support_hours")
    @classmethod
    def _readable_support_hours(cls, value: str) -> str:
        try:
            parse_windows(value)
        except ValueError as exc:
            raise ValueError(f"SUPPORT_HOURS: {exc}") from exc
        return value

    @field_validator("support_timezone")
    @classmethod
    def _known_support_timezone(cls, value: str) -> str:
        try:
            parse_zone(value)
        except ValueError as exc:
            raise ValueError(f"SUPPORT_TIMEZONE: {exc}") from exc
        return value

    @field_validator("default_phone_region")
    @classmethod
    def _upper_region(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _development_defaults(self) -> Settings:
        if self.environment == "development" and not self.admin_token:
            self.admin_token = DEV_ADMIN_TOKEN
        if self.environment == "development" and not self.secret_key:
            self.secret_key = DEV_SECRET_KEY
        return self

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def ocpp_unsecured_allowed(self) -> bool:
        """Chargers without a key may connect: explicit setting, else only in development."""
        if self.ocpp_allow_unsecured is not None:
            return self.ocpp_allow_unsecured
        return self.is_development

    @property
    def sms_configured(self) -> bool:
        """Any Twilio setting is given: the SMS channel is meant to be on."""
        return bool(
            self.twilio_account_sid
            or self.twilio_auth_token
            or self.twilio_from_number
            or self.twilio_messaging_service_sid
        )

    @model_validator(mode="after")
    def _pairs_given_together(self) -> Settings:
        for cert, key in (
            ("tls_certfile", "tls_keyfile"),
            ("ocpp_ca_certfile", "ocpp_ca_keyfile"),
        ):
            if bool(getattr(self, cert)) != bool(getattr(self, key)):
                raise ValueError(f"{cert.upper()} and {key.upper()} go together")
        if self.tls_client_cafile and not self.tls_certfile:
            raise ValueError("TLS_CLIENT_CAFILE needs TLS_CERTFILE (client certificates need TLS)")
        return self

    def check_secrets(self) -> None:
        """Refuse to start outside development with a missing or placeholder secret."""
        if self.is_development:
            return
        secrets_needed = ["admin_token", "secret_key"]
        if self.telegram_bot_token and self.telegram_mode == "webhook":
            secrets_needed.append("telegram_webhook_secret")
        if self.ocpp_key_pepper:  # empty: derived from SECRET_KEY, checked above
            secrets_needed.append("ocpp_key_pepper")
        for name in secrets_needed:
            value = getattr(self, name)
            if value.strip().lower() in _PLACEHOLDER_SECRETS:
                state = "missing" if not value else "set to a placeholder"
            elif len(value.strip()) < MIN_SECRET_LENGTH:
                state = f"too short ({len(value.strip())} characters, at least {MIN_SECRET_LENGTH})"
            else:
                continue
            raise ConfigurationError(
                f"{name.upper()} is {state}; set it to a long random value "
                f"(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`) "
                f"or run with ENVIRONMENT=development."
            )
        stripe_secret = self.stripe_webhook_secret.strip().lower()
        if self.stripe_api_key and stripe_secret in _PLACEHOLDER_SECRETS:
            raise ConfigurationError(
                "STRIPE_WEBHOOK_SECRET is missing or a placeholder while STRIPE_API_KEY is set; "
                "copy the endpoint's signing secret (whsec_...) from the Stripe Dashboard, "
                "unset STRIPE_API_KEY, or run with ENVIRONMENT=development."
            )
        token = self.twilio_auth_token.strip().lower()
        if self.sms_configured and token in _PLACEHOLDER_SECRETS:
            raise ConfigurationError(
                "TWILIO_AUTH_TOKEN is missing or a placeholder while SMS is configured; copy "
                "the Auth Token from the Twilio Console (it signs the webhooks), unset the "
                "TWILIO_* variables, or run with ENVIRONMENT=development."
            )


@lru_cache
def get_settings() -> Settings:
    return Settings()
