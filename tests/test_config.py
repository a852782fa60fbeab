from __future__ import annotations

import pytest

from app.config import ConfigError, load_settings


def test_embedded_default_needs_no_configuration(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.embedded and settings.is_sqlite
    assert settings.port == 8000 and settings.host == "127.0.0.1"
    assert len(settings.secret_key) >= 32
    assert load_settings({}).secret_key == settings.secret_key, "the generated key is kept across restarts"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"COOKIE_SECURE": "maybe"}, "COOKIE_SECURE"),
        ({"BOOKING_HOLD_MINUTES": "0"}, "BOOKING_HOLD_MINUTES"),
        ({"DATABASE_URL": "postgres://u@h/db"}, "SECRET_KEY"),
        ({"ALLOWED_ORIGINS": "example.com"}, "ALLOWED_ORIGINS"),
    ],
)
def test_bad_configuration_names_the_variable(env: dict[str, str], variable: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=variable):
        load_settings(env)


def test_production_settings_are_read(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://app@db/chargeslot",
            "REDIS_URL": "redis://cache:6379/0",
            "SECRET_KEY": "k" * 40,
            "PORT": "9000",
            "ALLOWED_ORIGINS": "https://a.example, https://b.example",
        }
    )
    assert not settings.embedded
    assert settings.database_url == "postgres://app@db/chargeslot"
    assert settings.cookie_secure is True
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    assert settings.tortoise_db_url.endswith("maxsize=32")
