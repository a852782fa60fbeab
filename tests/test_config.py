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


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"SIGN_IN_LIMIT": "5"}, "SIGN_IN_LIMIT"),
        ({"SIGN_IN_LIMIT": "five/15"}, "SIGN_IN_LIMIT"),
        ({"SIGN_IN_LIMIT": "0/15"}, "SIGN_IN_LIMIT"),
        ({"SIGN_IN_LIMIT": "5/0"}, "SIGN_IN_LIMIT"),
        ({"REGISTER_LIMIT": "10 per hour"}, "REGISTER_LIMIT"),
        ({"REGISTER_LIMIT": "-1/60"}, "REGISTER_LIMIT"),
        ({"CORS_ORIGINS": "app.example.com"}, "CORS_ORIGINS"),
    ],
)
def test_bad_hygiene_settings_stop_the_start_with_a_message_naming_them(
    env: dict[str, str], variable: str, tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=variable) as raised:
        load_settings(env)
    assert "got" in str(raised.value), "the message quotes the bad value"


def test_a_short_metrics_token_is_refused_without_repeating_it(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="METRICS_TOKEN") as raised:
        load_settings({"METRICS_TOKEN": "hunter2"})
    assert "hunter2" not in str(raised.value)


def test_throttling_cors_and_metrics_settings_default_to_todays_behaviour(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert (str(settings.sign_in_limit), str(settings.register_limit)) == ("5/15", "10/60")
    assert settings.cors_origins == () and settings.metrics_token is None


def test_throttling_cors_and_metrics_settings_are_read(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        {
            "SIGN_IN_LIMIT": "3/10",
            "REGISTER_LIMIT": " 2/1440 ",
            "CORS_ORIGINS": "https://app.example.com/, http://localhost:5173",
            "METRICS_TOKEN": "m" * 24,
        }
    )
    assert (settings.sign_in_limit.amount, settings.sign_in_limit.minutes) == (3, 10)
    assert (settings.register_limit.amount, settings.register_limit.minutes) == (2, 1440)
    assert settings.cors_origins == ("https://app.example.com", "http://localhost:5173")
    assert settings.metrics_token == "m" * 24
