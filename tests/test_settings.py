"""Settings come from the environment; unsafe secrets stop a production start."""

from __future__ import annotations

from typing import Any

import pytest

from backend.db import UnsupportedDatabaseError, async_url, sqlite_file
from backend.settings import DEV_ADMIN_TOKEN, ConfigurationError, Settings


def _settings(**values: Any) -> Settings:
    """Settings from `values` and the environment only (no .env file).

    The environment holds none of the caller's exported settings: conftest's autouse
    `no_settings_from_the_shell` removes them, so a test sees only what it sets.
    """
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize("token", ["", "change-me", "changethis", DEV_ADMIN_TOKEN])
def test_production_refuses_a_missing_or_default_admin_token(token: str) -> None:
    with pytest.raises(ConfigurationError, match="ADMIN_TOKEN"):
        _settings(environment="production", admin_token=token).check_secrets()


def test_production_accepts_a_real_token() -> None:
    _settings(
        environment="production", admin_token="k3y-" + "x" * 40, secret_key="s" * 40
    ).check_secrets()


def test_development_gets_a_default_token() -> None:
    settings = _settings(environment="development")
    settings.check_secrets()
    assert settings.admin_token == DEV_ADMIN_TOKEN


def test_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.internal/charge")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://ladda.example.se/")
    monkeypatch.setenv("ADMIN_TOKEN", "from-env-0123456789")
    settings = _settings()
    assert settings.database_url == "postgresql://u@db.internal/charge"
    assert settings.public_base_url == "https://ladda.example.se"
    assert settings.admin_token == "from-env-0123456789"
    assert settings.environment == "production"


def test_the_default_database_is_a_sqlite_file_under_var() -> None:
    path = sqlite_file(_settings().database_url)
    assert path is not None
    assert path.parts[-2:] == ("var", "chargebot.sqlite3")


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("sqlite:///var/x.sqlite3", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///var/x.sqlite3", "sqlite+aiosqlite"),
        ("postgresql://postgres@127.0.0.1/db", "postgresql+psycopg"),
        ("postgres://postgres@127.0.0.1/db", "postgresql+psycopg"),
        ("postgresql+psycopg2://postgres@127.0.0.1/db", "postgresql+psycopg"),
    ],
)
def test_the_app_picks_the_async_driver_itself(given: str, driver: str) -> None:
    assert async_url(given).drivername == driver


def test_an_unsupported_database_is_named() -> None:
    with pytest.raises(UnsupportedDatabaseError, match="mysql"):
        async_url("mysql://root@localhost/x")


@pytest.mark.parametrize("key", ["", "changeme", "dev-secret-key"])
def test_production_refuses_a_missing_or_placeholder_secret_key(key: str) -> None:
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        _settings(environment="production", admin_token="k" * 40, secret_key=key).check_secrets()


@pytest.mark.parametrize(
    ("variable", "values"),
    [
        ("ADMIN_TOKEN", {"admin_token": "a", "secret_key": "s" * 40}),
        ("ADMIN_TOKEN", {"admin_token": "k" * 31, "secret_key": "s" * 40}),
        ("SECRET_KEY", {"admin_token": "k" * 40, "secret_key": "b"}),
        ("SECRET_KEY", {"admin_token": "k" * 40, "secret_key": "s" * 31}),
        (
            "TELEGRAM_WEBHOOK_SECRET",
            {
                "admin_token": "k" * 40,
                "secret_key": "s" * 40,
                "telegram_bot_token": "123456:" + "A" * 35,
                "telegram_webhook_secret": "short-webhook-secret",
            },
        ),
    ],
)
def test_production_refuses_a_secret_shorter_than_32_characters(
    variable: str, values: dict[str, str]
) -> None:
    """The incident: production started with ADMIN_TOKEN=a, SECRET_KEY=b."""
    with pytest.raises(ConfigurationError, match=rf"{variable} is too short .*at least 32"):
        _settings(environment="production", **values).check_secrets()


def test_secrets_of_32_characters_are_enough() -> None:
    _settings(
        environment="production",
        admin_token="k" * 32,
        secret_key="s" * 32,
        telegram_bot_token="123456:" + "A" * 35,
        telegram_webhook_secret="w" * 32,
    ).check_secrets()


def test_development_takes_short_secrets() -> None:
    _settings(environment="development", admin_token="a", secret_key="b").check_secrets()


def test_an_unused_webhook_secret_may_be_short() -> None:
    """Polling (or no bot at all) never checks TELEGRAM_WEBHOOK_SECRET."""
    values = {"admin_token": "k" * 40, "secret_key": "s" * 40, "telegram_webhook_secret": "x"}
    _settings(environment="production", **values).check_secrets()
    _settings(
        environment="production",
        telegram_bot_token="123456:" + "A" * 35,
        telegram_mode="polling",
        **values,
    ).check_secrets()


@pytest.mark.parametrize("pepper", ["x", "p" * 31, "changeme"])
def test_a_short_key_pepper_is_refused_in_production(pepper: str) -> None:
    """OCPP_KEY_PEPPER keys every charger's HMAC: set, it is a secret like SECRET_KEY."""
    values = {"admin_token": "k" * 40, "secret_key": "s" * 40}
    with pytest.raises(ConfigurationError, match="OCPP_KEY_PEPPER is"):
        _settings(environment="production", ocpp_key_pepper=pepper, **values).check_secrets()
    _settings(environment="production", ocpp_key_pepper="p" * 32, **values).check_secrets()
    _settings(environment="production", ocpp_key_pepper="", **values).check_secrets()
    _settings(environment="development", ocpp_key_pepper="x").check_secrets()
