"""A real server process and a real Chromium for the browser flows.

The server is ``python -m app serve`` in the embedded default (SQLite file in a temporary working
directory, in-process bus, background tasks on), on a free port. It seeds the demo data itself.
Chromium is Debian's (``/usr/bin/chromium``); when it is missing these tests skip, except on CI.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import SCREENSHOTS, create_station, free_port

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() == "true"

DRIVER = {"email": "driver@chargeslot.example", "password": "drive-electric-42"}
OPERATOR = {"email": "operator@chargeslot.example", "password": "operate-stations-42"}
#: Not among the demo users: the ``admin`` fixture adds it to the shared server.
ADMIN = {"email": "admin@chargeslot.example", "username": "test-admin", "password": "keys-to-the-grid-42"}


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready after {timeout}s:\n{log.read_text()[-4000:]}")


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing; CI needs Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is not installed")


class Server:
    """One ``python -m app serve`` process in its own working directory (so its own SQLite file
    and demo data), on a free port. Its output is kept with the screenshots, for reading after a
    failed CI run."""

    def __init__(self, workdir: Path, name: str = "browser-server") -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = SCREENSHOTS.parent / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"}}
        env.update(
            PORT=str(self.port),
            HOST="127.0.0.1",
            COOKIE_SECURE="false",
            PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
            PYTHONUNBUFFERED="1",
            # Every test's browser comes from 127.0.0.1, one client address: the suite registers
            # many more drivers an hour than the default limit of 10 lets one address make.
            REGISTER_LIMIT="1000/60",
        )
        return env

    def start(self) -> str:
        SCREENSHOTS.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app", "serve"],
                cwd=self.workdir,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_ready(self.url, self.process, self.log)
        except BaseException:
            self.stop()
            raise
        return self.url

    def create_user(self, email: str, username: str, password: str, role: str) -> None:
        """An account made the way an operator of the site makes one: the command line, on the
        server's own database (the API only registers drivers)."""
        command = [sys.executable, "-m", "app", "create-user", "--email", email, "--username", username]
        subprocess.run(
            [*command, "--role", role],
            cwd=self.workdir,
            env=self.env(),
            input=password + "\n",
            text=True,
            capture_output=True,
            check=True,
            timeout=60,
        )

    def stop(self) -> None:
        """End the process (the site becomes unreachable, as for a kiosk whose network fails)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server most tests share; none of them may stop it."""
    require_chromium()
    server = Server(tmp_path_factory.mktemp("server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def base_url(shared_server: Server) -> str:
    return shared_server.url


@pytest.fixture(scope="session")
def admin(shared_server: Server) -> dict[str, str]:
    """An admin account on the shared server (created once), as sign-in credentials."""
    shared_server.create_user(ADMIN["email"], ADMIN["username"], ADMIN["password"], "admin")
    return {"email": ADMIN["email"], "password": ADMIN["password"]}


@pytest.fixture
def make_driver(shared_server: Server) -> Callable[[str], dict[str, str]]:
    """New driver accounts on the shared server, made with the command line: registering through
    the API would spend the per-address registration allowance the registration tests need."""

    def make(prefix: str = "driver") -> dict[str, str]:
        tag = secrets.token_hex(4)
        user = {"email": f"{prefix}-{tag}@example.com", "password": f"charge-up-{tag}-7"}
        shared_server.create_user(user["email"], f"{prefix}{tag}", user["password"], "driver")
        return user

    return make


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    """A server for one test alone, started, which the test may stop."""
    require_chromium()
    server = Server(tmp_path, name="browser-own-server")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def playwright_instance() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        yield p


@pytest.fixture(scope="session")
async def browser(playwright_instance: Any, base_url: str) -> AsyncIterator[Any]:
    instance = await playwright_instance.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
    yield instance
    await instance.close()


class Api:
    """The JSON API from the test's side, signed in like a browser (session cookie + CSRF header)."""

    def __init__(self, context: Any) -> None:
        self.context = context

    @classmethod
    async def open(cls, playwright: Any, base_url: str, credentials: dict[str, str] | None = None) -> Api:
        api = cls(await playwright.request.new_context(base_url=base_url))
        if credentials:
            await api.call("POST", "/api/auth/login", credentials)
        return api

    async def csrf(self) -> str:
        state = await self.context.storage_state()
        return next((c["value"] for c in state["cookies"] if c["name"] == "csrf_token"), "")

    async def call(self, method: str, path: str, body: Any = None, expect: int | None = 200) -> Any:
        headers = {}
        if method != "GET":
            headers["X-CSRF-Token"] = await self.csrf()
        response = await self.context.fetch(path, method=method, data=body, headers=headers)
        if expect is not None:
            assert response.status == expect, f"{method} {path}: {response.status} {await response.text()}"
        text = await response.text()
        return await response.json() if text else None

    async def close(self) -> None:
        await self.context.dispose()


@pytest.fixture
async def operator_api(playwright_instance: Any, base_url: str) -> AsyncIterator[Api]:
    api = await Api.open(playwright_instance, base_url, OPERATOR)
    yield api
    await api.close()


@pytest.fixture
async def anon_api(playwright_instance: Any, base_url: str) -> AsyncIterator[Api]:
    api = await Api.open(playwright_instance, base_url)
    yield api
    await api.close()


@pytest.fixture
async def new_page(browser: Any, base_url: str) -> AsyncIterator[Any]:
    """Open pages in fresh browser contexts (separate cookie jars); all closed after the test."""
    contexts: list[Any] = []

    async def make(
        width: int = 1280,
        height: int = 900,
        timezone: str | None = None,
        server: str | None = None,
        bypass_csp: bool = False,
    ) -> Any:
        context = await browser.new_context(
            base_url=server or base_url,
            viewport={"width": width, "height": height},
            timezone_id=timezone,
            locale="en-GB",
            bypass_csp=bypass_csp,  # only for injecting test tools (axe-core)
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return await context.new_page()

    yield make
    for context in contexts:
        await context.close()


@pytest.fixture(scope="session")
async def any_hours_station(playwright_instance: Any, base_url: str, admin: dict[str, str]) -> dict[str, Any]:
    """A station open around the clock (UTC, two chargers) on the shared server, made once."""
    api = await Api.open(playwright_instance, base_url, admin)
    made = await create_station(api, "Any Hours Yard", {"twentyfourseven": True}, timezone="UTC")
    await api.close()
    return made


@pytest.fixture(scope="session")
async def driver_with_bookings(
    playwright_instance: Any, base_url: str, any_hours_station: dict[str, Any], shared_server: Server
) -> dict[str, str]:
    """A driver with one booking awaiting payment and one paid, a vehicle on both, at
    ``any_hours_station``: My bookings shows every control and field."""
    tag = secrets.token_hex(4)
    user = {"email": f"two-bookings-{tag}@example.com", "password": f"check-every-page-{tag}"}
    shared_server.create_user(user["email"], f"two{tag}", user["password"], "driver")
    api = await Api.open(playwright_instance, base_url, user)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=3)
    booked = []
    for hour in range(2):
        body = {
            "station_id": any_hours_station["id"],
            "slot_time": (start + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%S"),
            "duration_minutes": 30,
            "vehicle_number": "KA 01 AB 1234",
        }
        booked.append(await api.call("POST", "/api/bookings", body))
    pay = {"booking_id": booked[0]["booking_id"], "payment_method": "UPI", "amount": booked[0]["amount_due"]}
    await api.call("POST", "/api/payments/process", pay)
    await api.close()
    return user
