"""Configuration: safe local defaults, and production refusing to start without its secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.config import ConfigError, load_settings

PRODUCTION_SECRETS = {
    "SECRET_KEY": "s",
    "PUBLIC_BASE_URL": "https://hotline.example.org/",
    "TWILIO_ACCOUNT_SID": "AC" + "a" * 32,
    "TWILIO_AUTH_TOKEN": "t",
    "TWILIO_FROM_NUMBER": "+865370000000",
}


def test_defaults_need_no_servers(tmp_path: Path) -> None:
    settings = load_settings({"HOTLINE_INSTANCE_PATH": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'hotline.sqlite'}"
    assert settings.broker_url.startswith("sqla+sqlite:///")
    assert settings.enabled_locales == ("zh-CN", "en-US", "ko-KR")
    assert not settings.sms_enabled  # no account: texts go to the log


@pytest.mark.parametrize("missing", sorted(PRODUCTION_SECRETS))
def test_production_fails_loudly_without_each_secret(missing: str) -> None:
    env = {"HOTLINE_ENV": "production", **PRODUCTION_SECRETS}
    del env[missing]
    with pytest.raises(ConfigError, match=missing):
        load_settings(env)


def test_production_with_its_secrets_starts() -> None:
    settings = load_settings({"HOTLINE_ENV": "production", **PRODUCTION_SECRETS})
    assert settings.public_base_url == "https://hotline.example.org"
    assert settings.sms_enabled


def test_postgres_urls_get_the_installed_driver() -> None:
    settings = load_settings({"DATABASE_URL": "postgres://u@db:5432/hotline"})
    assert settings.database_url == "postgresql+psycopg://u@db:5432/hotline"


@pytest.mark.parametrize("value", ["", "fr-FR", "zh-CN,xx"])
def test_unknown_locales_are_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="HOTLINE_ENABLED_LOCALES"):
        load_settings({"HOTLINE_ENABLED_LOCALES": value})
