"""Shared fixtures.

Every test that touches the database runs twice: on the embedded default (SQLite file, in-process
bus) and on the production pair (PostgreSQL + Redis) when ``TEST_DATABASE_URL`` and
``TEST_REDIS_URL`` are set. With ``CI=true`` a missing service fails the run instead of skipping.
Each run gets its own PostgreSQL database and Redis channel prefix, so two runs never meet.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from quart import Quart
from tortoise import connections
from tortoise.backends.base.executor import EXECUTOR_CACHE

from app import create_app
from app.clock import FrozenClock
from app.config import Settings
from app.db import migrate
from app.models import Role, User
from app.state import state

TEST_SECRET = "test-secret-key-that-is-long-enough-for-hmac-0123456789"
#: A Wednesday, 10:30 in Mumbai: the demo stations' usual hours have them open.
DEFAULT_NOW = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
DEFAULT_PASSWORD = "correct-horse-battery"

IN_CI = os.environ.get("CI", "").lower() == "true"
TABLES = (
    "notifications",
    "booking_events",
    "charging_sessions",
    "idempotency_records",
    "payments",
    "bookings",
    "chargers",
    "charge_points",
    "regular_hours",
    "exceptional_periods",
    "stations",
    "sessions",
    "users",
)


def service_url(name: str) -> str | None:
    url = os.environ.get(name)
    if not url:
        if IN_CI:
            pytest.fail(f"{name} is not set; CI requires PostgreSQL and Redis")
        pytest.skip(f"{name} not set")
    return url


@dataclass
class Backend:
    name: str
    settings: Settings

    @property
    def is_postgres(self) -> bool:
        return self.name == "postgres"


async def create_postgres_database(base_url: str) -> tuple[str, str]:
    """Create a fresh database on the server of ``base_url``; return (url, name)."""
    name = f"chargeslot_test_{secrets.token_hex(4)}"
    dsn = base_url.replace("postgres://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    prefix, _, _ = base_url.rpartition("/")
    return f"{prefix}/{name}", name


async def drop_postgres_database(base_url: str, name: str) -> None:
    conn = await asyncpg.connect(base_url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def base_settings(**overrides: Any) -> Settings:
    return replace(Settings(secret_key=TEST_SECRET, cookie_secure=False, run_background_tasks=False), **overrides)


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "chargeslot.db"
        settings = base_settings(database_url=f"sqlite://{path}")
        await migrate(settings)
        await connections.close_all()
        yield Backend("sqlite", settings)
        return
    base_url = service_url("TEST_DATABASE_URL")
    redis_url = service_url("TEST_REDIS_URL")
    assert base_url and redis_url
    url, name = await create_postgres_database(base_url)
    settings = base_settings(database_url=url, redis_url=redis_url, redis_prefix=f"test-{secrets.token_hex(4)}")
    await migrate(settings)
    await connections.close_all()
    yield Backend("postgres", settings)
    await drop_postgres_database(base_url, name)


@pytest.fixture(scope="session")
def clock() -> FrozenClock:
    return FrozenClock(DEFAULT_NOW)


@pytest.fixture(scope="session")
async def app(backend: Backend, clock: FrozenClock) -> AsyncIterator[Quart]:
    # Tortoise caches each model's SQL per connection name for the life of the process; this suite
    # switches dialects between the two backends, so the cache must start empty for each.
    EXECUTOR_CACHE.clear()
    application = create_app(backend.settings, clock=clock)
    async with application.test_app():
        bus = state(application).bus
        if hasattr(bus, "wait_connected"):
            assert await bus.wait_connected(5), "bus did not connect to Redis"
        yield application


async def truncate_all(backend: Backend) -> None:
    conn = connections.get("default")
    if backend.is_postgres:
        await conn.execute_script(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    else:
        for table in TABLES:
            await conn.execute_script(f"DELETE FROM {table}")
        await conn.execute_script("DELETE FROM sqlite_sequence")


@pytest.fixture
async def db(app: Quart, backend: Backend, clock: FrozenClock) -> AsyncIterator[Backend]:
    """An empty database and the clock back at DEFAULT_NOW, for one test."""
    clock.set(DEFAULT_NOW)
    await truncate_all(backend)
    state(app).directory.reset()
    state(app).throttle.reset()
    await state(app).bus.forget_announced()  # station ids start again: what was said of them was not
    yield backend


class ApiClient:
    """The Quart test client, sending the CSRF header the way our pages' scripts do."""

    def __init__(self, app: Quart) -> None:
        self.app = app
        self.raw = app.test_client()

    @property
    def cookie_jar(self) -> CookieJar:
        jar = self.raw.cookie_jar
        assert jar is not None
        return jar

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.cookie_jar if c.name == name), None)

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", None) or {})
        token = self.cookie("csrf_token")
        if token and method not in ("GET", "HEAD") and "X-CSRF-Token" not in headers:
            headers["X-CSRF-Token"] = token
        return await self.raw.open(path, method=method, headers=headers, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> Any:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Any:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> Any:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> Any:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Any:
        return await self.request("DELETE", path, **kwargs)

    async def sign_in(self, user: User, password: str = DEFAULT_PASSWORD) -> None:
        response = await self.post("/api/auth/login", json={"email": user.email, "password": password})
        assert response.status_code == 200, await response.get_data(as_text=True)


@pytest.fixture
def client(app: Quart, db: Backend) -> ApiClient:
    return ApiClient(app)


@pytest.fixture
def other_client(app: Quart, db: Backend) -> ApiClient:
    """A second browser, for tests with two users."""
    return ApiClient(app)


@pytest.fixture(scope="session")
def password_hash() -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(DEFAULT_PASSWORD)


@pytest.fixture
def make_user(db: Backend, password_hash: str) -> Any:
    counter = iter(range(1, 10_000))

    async def make(role: Role = Role.DRIVER, *, is_active: bool = True, email: str | None = None) -> User:
        n = next(counter)
        return await User.create(
            email=email or f"{role.value}{n}@example.com",
            username=f"{role.value}{n}",
            password_hash=password_hash,
            role=role,
            is_active=is_active,
        )

    return make


@pytest.fixture
async def driver(make_user: Any) -> User:
    user: User = await make_user(Role.DRIVER)
    return user


@pytest.fixture
async def operator(make_user: Any) -> User:
    user: User = await make_user(Role.OPERATOR)
    return user


@pytest.fixture
async def driver_client(client: ApiClient, driver: User) -> ApiClient:
    from tests.helpers import signed_in  # not at the top: tests.helpers imports this module

    return await signed_in(client, driver)


@pytest.fixture
async def operator_client(other_client: ApiClient, operator: User) -> ApiClient:
    from tests.helpers import signed_in

    return await signed_in(other_client, operator)


@pytest.fixture(scope="module")
async def private_redis() -> AsyncIterator[str]:
    """A Redis of the module's own, for tests that run the arq worker against it."""
    from tests.helpers import own_redis

    async with own_redis() as url:
        yield url


# -- production processes (the Procfile's commands) on PostgreSQL and a Redis of the test's own ------


@pytest.fixture
def production(db: Backend) -> Backend:
    if not db.is_postgres:
        pytest.skip("the production processes: PostgreSQL and Redis")
    return db


@pytest.fixture
async def redis() -> AsyncIterator[Any]:
    """A redis-server of the test's own (``helpers.RedisProcess``), which the test may stop."""
    from tests.helpers import RedisProcess

    server = RedisProcess()
    await server.start()
    yield server
    server.stop()


@pytest.fixture
def processes(production: Backend, redis: Any, tmp_path: Path) -> Iterator[Any]:
    """``helpers.Processes`` on the test's database and Redis, all stopped at the end."""
    from tests.helpers import Processes

    running = Processes(production, redis, tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> Iterator[None] | None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "postgres":
            item.add_marker(pytest.mark.postgres)
            item.add_marker(pytest.mark.redis)
    return None
