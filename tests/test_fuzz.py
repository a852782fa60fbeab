"""Schemathesis against /openapi.json of a real server: no request it generates gets a 500, and
every status it gets is one the document lists for that operation.

The server is ``chargeslot serve`` with its demo data on a fresh database (SQLite, then PostgreSQL
and Redis when the tests have them), so requests go through Hypercorn exactly as a client's do.
Each operation is tried signed out, as the demo operator and as the demo driver. The run is
bounded and repeatable (derandomized, ``FUZZ_EXAMPLES`` examples per operation and role); ``make
fuzz`` runs a longer one.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from app.models import Role
from app.seed import DEMO_USERS
from tests.conftest import TEST_SECRET, create_postgres_database, drop_postgres_database, service_url

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))
CHECKS = [not_a_server_error, status_code_conformance]
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
#: Signing in, registering or out from a fuzzed session would end the session being fuzzed.
SESSION_CHANGES = r"^/api/auth/(login|logout|register)$"


@dataclass
class Target:
    url: str
    sessions: dict[Role, requests.Session]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_ready(url: str, server: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server at {url} was not ready within {timeout} s; its output is in {log}")


def serve(log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:  # the server keeps its own copy of the descriptor
        command = [sys.executable, "-m", "app", "serve"]
        return subprocess.Popen(command, cwd=log.parent, env=env, stdout=output, stderr=output)


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def signed_in(url: str, role: Role) -> requests.Session:
    """A session signed in as the demo user of ``role``, sending its CSRF token with every request
    the way the site's pages do."""
    (demo,) = (user for user in DEMO_USERS if user.role == role)
    session = requests.Session()
    response = session.post(f"{url}/api/auth/login", json={"email": demo.email, "password": demo.password})
    assert response.status_code == 200, response.text
    session.headers["X-CSRF-Token"] = session.cookies["csrf_token"]
    return session


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Target]:
    """``chargeslot serve`` on a fresh database (the embedded default, then PostgreSQL + Redis), with
    its demo users signed in before any fuzzed sign-in attempt can throttle them."""
    data = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite://{data / 'chargeslot.db'}",
        "SECRET_KEY": TEST_SECRET,
        "COOKIE_SECURE": "false",
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }
    env.pop("REDIS_URL", None)
    database: tuple[str, str] | None = None
    if request.param == "postgres":
        base_url, redis_url = service_url("TEST_DATABASE_URL"), service_url("TEST_REDIS_URL")
        assert base_url and redis_url
        database = await create_postgres_database(base_url)
        env.update(DATABASE_URL=database[0], REDIS_URL=redis_url, REDIS_PREFIX=f"fuzz-{port}")
    log = data / "server.log"
    server = serve(log, env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, server, log)
        yield Target(url, {role: signed_in(url, role) for role in (Role.OPERATOR, Role.DRIVER)})
    finally:
        stop(server)
        if database is not None:
            await drop_postgres_database(base_url, database[1])


@pytest.fixture(scope="module")
def api_schema(target: Target) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{target.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")
signed_in_schema = schema.exclude(path_regex=SESSION_CHANGES)


@schema.parametrize()
@FUZZ_SETTINGS
def test_signed_out_requests_get_documented_answers(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)


@signed_in_schema.parametrize()
@FUZZ_SETTINGS
def test_operator_requests_get_documented_answers(case: schemathesis.Case, target: Target) -> None:
    case.call_and_validate(session=target.sessions[Role.OPERATOR], checks=CHECKS)


@signed_in_schema.parametrize()
@FUZZ_SETTINGS
def test_driver_requests_get_documented_answers(case: schemathesis.Case, target: Target) -> None:
    case.call_and_validate(session=target.sessions[Role.DRIVER], checks=CHECKS)
