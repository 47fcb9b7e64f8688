"""Settings come from the environment; unsafe secrets stop a production start."""

from __future__ import annotations

import pytest

from backend.db import UnsupportedDatabaseError, async_url, sqlite_file
from backend.settings import DEV_ADMIN_TOKEN, ConfigurationError, Settings


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]


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
