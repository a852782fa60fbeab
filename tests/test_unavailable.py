"""The database out of reach: every endpoint answers 503 ``unavailable`` with ``Retry-After``, never
a 500, and recovers nothing by guessing.

The end-to-end tests run a real server process on a fresh PostgreSQL database and then take the
database away in two ways: dropped under the running server, and the server made unreachable (a
proxy in front of PostgreSQL stops, cutting open connections and refusing new ones). SQLite's
failures, which cannot be provoked under a running server, are checked with the errors the driver
really raises.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from asyncpg import exceptions as pg
from tortoise.exceptions import DBConnectionError, OperationalError

from app import accounts
from app.errors import is_outage
from tests.conftest import ApiClient, create_postgres_database, drop_postgres_database, service_url
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[1]
DRIVER = {"email": "driver@chargeslot.example", "password": "drive-electric-42"}
SLOT = {"slot_time": "2026-12-10T12:00:00", "duration_minutes": 60}

#: What a driver's browser asks for, signed in, with the CSRF header it always sends.
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/stations/1/chargers/available?slot_time=2026-12-10T12:00:00&duration_minutes=60", None),
    ("GET", "/api/auth/me", None),
    ("GET", "/api/bookings", None),
    ("POST", "/api/bookings", {"station_id": 1, **SLOT}),
    ("POST", "/api/payments/process", {"booking_id": 1, "payment_method": "UPI", "amount": "150.00"}),
    ("POST", "/api/auth/login", DRIVER),
    ("GET", "/bookings", None),
]


# --- a real server whose database goes away -----------------------------------------------------


class TcpProxy:
    """Forwards local connections to a TCP server until ``cut``: then every open connection drops
    and new ones are refused, as when the database server itself goes away. While
    ``holding_answers``, the server's answers are not passed on (``answer_held`` tells when one
    was), so a cut can fall in the middle of a query."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.holding_answers = False
        self.answer_held = asyncio.Event()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        self._writers += [client_writer, upstream_writer]
        await asyncio.gather(
            self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer, answers=True)
        )

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answers: bool = False) -> None:
        try:
            while data := await reader.read(65536):
                if answers and self.holding_answers:
                    self.answer_held.set()
                    return  # the answer is lost with the connection
                writer.write(data)
                await writer.drain()
        except OSError:
            pass  # the other side was cut
        finally:
            writer.close()


@dataclass
class Site:
    """A browser-like client of a ``chargeslot serve`` process."""

    client: httpx.AsyncClient

    async def sign_in(self) -> dict[str, str]:
        """Sign in as the demo driver; the headers every later state change sends."""
        response = await self.client.post("/api/auth/login", json=DRIVER)
        assert response.status_code == 200, response.text
        return {"X-CSRF-Token": self.client.cookies["csrf_token"]}


async def _started(output: asyncio.StreamReader) -> str:
    """Read the server's output until Hypercorn reports its address (after start-up has run)."""
    lines = []
    while line := (await output.readline()).decode(errors="replace"):
        lines.append(line)
        if "Running on http://" in line:
            return line.split("Running on ", 1)[1].split()[0]
    raise AssertionError("server exited before serving:\n" + "".join(lines[-40:]))


async def _drain(output: asyncio.StreamReader) -> None:
    """Keep reading, so that the server never blocks on a full pipe while it logs."""
    while await output.read(65536):
        pass


@pytest.fixture
async def postgres() -> AsyncIterator[tuple[str, str]]:
    """A fresh database: (its URL, its name)."""
    base_url = service_url("TEST_DATABASE_URL")
    assert base_url
    url, name = await create_postgres_database(base_url)
    yield url, name
    await drop_postgres_database(base_url, name)


@pytest.fixture
async def proxy(postgres: tuple[str, str]) -> AsyncIterator[TcpProxy]:
    target = urlsplit(postgres[0])
    forwarder = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await forwarder.start()
    yield forwarder


@pytest.fixture
async def site(postgres: tuple[str, str], proxy: TcpProxy, tmp_path: Path) -> AsyncIterator[Site]:
    """``chargeslot serve`` (migrated, demo data seeded) on the fresh database, through the proxy."""
    database = urlsplit(postgres[0])
    via_proxy = database._replace(netloc=f"{database.username}@127.0.0.1:{await proxy.start()}").geturl()
    env = {key: value for key, value in os.environ.items() if key not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(
        DATABASE_URL=via_proxy,
        SECRET_KEY=secrets.token_urlsafe(48),
        COOKIE_SECURE="false",
        RUN_BACKGROUND_TASKS="false",
        HOST="127.0.0.1",
        PORT=str(free_port()),
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        PYTHONUNBUFFERED="1",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "serve",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    try:
        url = await asyncio.wait_for(_started(process.stdout), 60)
        drain = asyncio.create_task(_drain(process.stdout))
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield Site(client)
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
    await drain


async def drop_database(postgres: tuple[str, str], proxy: TcpProxy) -> None:
    """``DROP DATABASE ... WITH (FORCE)`` from another connection: the server's are terminated."""
    base_url = service_url("TEST_DATABASE_URL")
    assert base_url
    await drop_postgres_database(base_url, postgres[1])


async def cut_the_network(postgres: tuple[str, str], proxy: TcpProxy) -> None:
    await proxy.cut()


Outage = Callable[[tuple[str, str], TcpProxy], Awaitable[None]]


@pytest.mark.postgres
@pytest.mark.parametrize("outage", [drop_database, cut_the_network], ids=["dropped", "unreachable"])
async def test_every_route_answers_503_with_retry_after_when_the_database_is_gone(
    site: Site, postgres: tuple[str, str], proxy: TcpProxy, outage: Outage
) -> None:
    headers = await site.sign_in()
    available = await site.client.get(ROUTES[0][1])
    assert available.status_code == 200, "the server works before the outage"

    await outage(postgres, proxy)

    for method, path, body in ROUTES:
        response = await site.client.request(method, path, json=body, headers=headers)
        assert response.status_code == 503, f"{method} {path}: {response.status_code} {response.text}"
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "unavailable"
        assert int(response.headers["Retry-After"]) > 0


@pytest.mark.postgres
async def test_a_query_cut_off_midway_is_503_too(site: Site, proxy: TcpProxy) -> None:
    await site.sign_in()
    proxy.holding_answers = True
    pending = asyncio.create_task(site.client.get("/api/auth/me"))
    await asyncio.wait_for(proxy.answer_held.wait(), 30)
    await proxy.cut()

    response = await pending
    assert (response.status_code, response.json()["code"]) == (503, "unavailable")
    assert int(response.headers["Retry-After"]) > 0


# --- what counts as an outage -------------------------------------------------------------------


def raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as caught:
        return caught


def sqlite_error(tmp_path: Path, sql: str | None = None) -> sqlite3.Error:
    """The error SQLite really raises: opening a file in a directory that does not exist, or
    running ``sql`` on a fresh database."""
    try:
        if sql is None:
            sqlite3.connect(tmp_path / "missing" / "chargeslot.db")
        else:
            sqlite3.connect(tmp_path / "chargeslot.db").execute(sql)
    except sqlite3.Error as error:
        return error
    raise AssertionError("SQLite raised nothing")


def wrapped_by_tortoise(error: BaseException) -> OperationalError:
    """As Tortoise's SQLite client wraps a driver error: raised while handling it."""
    try:
        try:
            raise error
        except BaseException as driver_error:
            raise OperationalError(driver_error)  # noqa: B904 - Tortoise does exactly this
    except OperationalError as wrapped:
        return wrapped


async def test_an_unopenable_sqlite_file_or_a_refused_connection_is_an_outage(tmp_path: Path) -> None:
    cannot_open = sqlite_error(tmp_path)
    assert is_outage(cannot_open)
    assert is_outage(wrapped_by_tortoise(cannot_open))
    with pytest.raises(OSError) as refused:
        await asyncpg.connect("postgresql://postgres@127.0.0.1:1/test")
    assert is_outage(refused.value)
    assert is_outage(wrapped_by_tortoise(refused.value))


@pytest.mark.parametrize(
    "driver_error",
    [
        pg.InvalidCatalogNameError('database "chargeslot" does not exist'),
        pg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        pg.InternalClientError(),
        pg.AdminShutdownError("terminating connection due to administrator command"),
        DBConnectionError("Can't establish connection to database chargeslot"),
        ConnectionResetError(104, "Connection reset by peer"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_outages_are_known_by_type_wherever_they_sit_in_the_chain(driver_error: Exception) -> None:
    assert is_outage(raised(driver_error))
    assert is_outage(wrapped_by_tortoise(driver_error))
    cause = OperationalError("wrapped")
    cause.__cause__ = driver_error
    assert is_outage(cause)


async def test_a_wrong_statement_or_a_plain_bug_is_not_an_outage(tmp_path: Path) -> None:
    syntax = sqlite_error(tmp_path, "SELEKT 1")
    missing_table = sqlite_error(tmp_path, "SELECT * FROM nowhere")
    for error in (syntax, missing_table, wrapped_by_tortoise(syntax), raised(KeyError("id"))):
        assert not is_outage(error), error
    try:
        try:
            raise ConnectionRefusedError()
        except ConnectionRefusedError:
            raise ValueError("unrelated") from None
    except ValueError as hidden:
        assert not is_outage(hidden), "raise ... from None declares the earlier error irrelevant"


async def test_the_error_handler_answers_an_outage_with_503_and_a_bug_with_500(
    client: ApiClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    failure: BaseException = wrapped_by_tortoise(sqlite_error(tmp_path))

    async def authenticate(*args: object) -> None:
        raise failure

    monkeypatch.setattr(accounts, "authenticate", authenticate)
    sign_in = {"email": "someone@example.com", "password": "whatever-pass"}
    response = await client.post("/api/auth/login", json=sign_in)
    assert (response.status_code, response.headers["Retry-After"]) == (503, "5")
    assert (await response.get_json())["code"] == "unavailable"

    failure = wrapped_by_tortoise(sqlite_error(tmp_path, "SELEKT 1"))
    response = await client.post("/api/auth/login", json=sign_in)
    assert response.status_code == 500
    assert "Retry-After" not in response.headers
