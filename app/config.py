"""Settings, read from the environment once at start-up and checked there.

A bad value stops the process with a message naming the variable, rather than failing on the
first request that happens to need it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DATA_DIR = Path("data")
DEFAULT_DATABASE_URL = "sqlite://data/chargeslot.db"


class ConfigError(ValueError):
    """A configuration variable is missing or malformed."""


@dataclass(frozen=True)
class Limit:
    """A throttling limit as configured: at most ``amount`` attempts per ``minutes``."""

    amount: int
    minutes: int

    def __str__(self) -> str:
        return f"{self.amount}/{self.minutes}"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: str = ""
    allowed_origins: tuple[str, ...] = ()
    booking_hold_minutes: int = 10
    booking_horizon_days: int = 7
    cookie_secure: bool = True
    db_pool_size: int = 32
    redis_prefix: str = "chargeslot"
    run_background_tasks: bool = True
    #: The site's external base URL (``https://charge.example``), for links that leave the screen
    #: they are shown on (kiosk QR codes); None = the request's own host.
    public_url: str | None = None
    #: ``smtp://user:pass@host:port`` (STARTTLS when offered) or ``smtps://`` (implicit TLS); None:
    #: no mail is sent.
    smtp_url: str | None = None
    mail_from: str = "Chargeslot <chargeslot@localhost>"
    #: Origins of separately hosted front ends that may read the API with credentials (CORS);
    #: empty = no CORS headers at all.
    cors_origins: tuple[str, ...] = ()
    #: Failed sign-ins per account (a client address gets four times as many, across accounts).
    sign_in_limit: Limit = Limit(5, 15)
    #: Registrations per client address.
    register_limit: Limit = Limit(10, 60)
    #: When set, ``GET /metrics`` wants ``Authorization: Bearer <token>``.
    metrics_token: str | None = None

    @property
    def embedded(self) -> bool:
        """True when running as the single-process site: SQLite and the in-process bus."""
        return self.redis_url is None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite://")

    @property
    def tortoise_db_url(self) -> str:
        if self.is_sqlite:
            return self.database_url
        separator = "&" if "?" in self.database_url else "?"
        return f"{self.database_url}{separator}maxsize={self.db_pool_size}"

    def origin_allowed(self, origin: str | None, site: str) -> bool:
        """Requests from the ``site`` origin itself (scheme and host alike) are always allowed;
        others only when listed. An ``http://`` page is another origin than the ``https://`` site."""
        return not origin or origin == site or origin in self.allowed_origins or origin in self.cors_origins


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _public_url(env: Mapping[str, str]) -> str | None:
    """PUBLIC_URL without its trailing slash; only a scheme and a host (and port), since the
    site's own paths are appended to it."""
    raw = (env.get("PUBLIC_URL") or "").strip()
    if not raw:
        return None
    error = ConfigError(f"PUBLIC_URL must look like https://host or http://host:port with no path, got {raw!r}")
    try:
        parts = urlsplit(raw)
        _ = parts.port  # a malformed port only shows when it is read
    except ValueError:
        raise error from None
    extras = parts.username is not None or parts.query or parts.fragment or raw.endswith(("?", "#"))
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or extras:
        raise error
    return f"{parts.scheme}://{parts.netloc}"


def _smtp_url(env: Mapping[str, str]) -> str | None:
    raw = (env.get("SMTP_URL") or "").strip()
    if not raw:
        return None
    error = ConfigError("SMTP_URL must look like smtp://user:password@host:port or smtps://host, got a malformed URL")
    try:
        parts = urlsplit(raw)
        _ = parts.port
    except ValueError:
        raise error from None
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname or parts.path not in ("", "/"):
        raise error
    return raw


def _mail_from(env: Mapping[str, str]) -> str:
    raw = (env.get("MAIL_FROM") or "").strip()
    if not raw:
        return Settings.mail_from
    if "@" not in raw or "\n" in raw or "\r" in raw:
        raise ConfigError(f"MAIL_FROM must be an address such as 'Chargeslot <noreply@example.com>', got {raw!r}")
    return raw


def _origins(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in env.get(name, "").split(",") if o.strip())
    for origin in origins:
        if "://" not in origin:
            raise ConfigError(f"{name} entries must look like https://host, got {origin!r}")
    return origins


def _limit(env: Mapping[str, str], name: str, default: Limit) -> Limit:
    """``N/minutes``: at most N attempts in each window of that many minutes."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    amount, slash, minutes = raw.partition("/")
    if not (slash and amount.strip().isdigit() and minutes.strip().isdigit()):
        raise ConfigError(f"{name} must look like N/minutes, e.g. {default}, got {raw!r}")
    limit = Limit(int(amount), int(minutes))
    if not (1 <= limit.amount <= 100_000 and 1 <= limit.minutes <= 7 * 24 * 60):
        raise ConfigError(f"{name} must allow 1 to 100000 attempts per 1 to 10080 minutes, got {raw!r}")
    return limit


def _embedded_secret() -> str:
    """The embedded default keeps a generated key under ./data so sessions survive restarts."""
    path = DATA_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    database_url = env.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    if not database_url.startswith(("sqlite://", "postgres://", "postgresql://", "asyncpg://")):
        raise ConfigError(
            "DATABASE_URL must start with sqlite://, postgres:// or postgresql://, "
            f"got {database_url.split('://', 1)[0]!r}"
        )
    if database_url.startswith("postgresql://"):
        database_url = "postgres://" + database_url.removeprefix("postgresql://")

    redis_url = env.get("REDIS_URL") or None
    if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"REDIS_URL must start with redis://, rediss:// or unix://, got {redis_url!r}")

    embedded = redis_url is None and database_url.startswith("sqlite://")
    secret_key = env.get("SECRET_KEY", "")
    if not secret_key:
        if not embedded:
            raise ConfigError("SECRET_KEY is required when DATABASE_URL or REDIS_URL is set")
        secret_key = _embedded_secret()
    elif len(secret_key) < 32:
        raise ConfigError("SECRET_KEY must be at least 32 characters long")

    metrics_token = env.get("METRICS_TOKEN") or None
    if metrics_token is not None and len(metrics_token) < 16:
        raise ConfigError("METRICS_TOKEN must be at least 16 characters long")

    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        host=env.get("HOST") or "127.0.0.1",
        port=_int(env, "PORT", 8000, 1, 65535),
        secret_key=secret_key,
        allowed_origins=_origins(env, "ALLOWED_ORIGINS"),
        booking_hold_minutes=_int(env, "BOOKING_HOLD_MINUTES", 10, 1, 24 * 60),
        booking_horizon_days=_int(env, "BOOKING_HORIZON_DAYS", 7, 1, 365),
        cookie_secure=_bool(env, "COOKIE_SECURE", not embedded),
        db_pool_size=_int(env, "DB_POOL_SIZE", 32, 1, 500),
        redis_prefix=env.get("REDIS_PREFIX") or "chargeslot",
        run_background_tasks=_bool(env, "RUN_BACKGROUND_TASKS", embedded),
        public_url=_public_url(env),
        smtp_url=_smtp_url(env),
        mail_from=_mail_from(env),
        cors_origins=_origins(env, "CORS_ORIGINS"),
        sign_in_limit=_limit(env, "SIGN_IN_LIMIT", Settings.sign_in_limit),
        register_limit=_limit(env, "REGISTER_LIMIT", Settings.register_limit),
        metrics_token=metrics_token,
    )
