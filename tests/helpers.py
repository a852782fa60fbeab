"""Plain helpers shared by the test modules: functions and context managers, one version of each.

A helper that more than one test module needs lives here, and test modules import it from here,
never from each other. Fixtures do not belong here: they live in ``tests/conftest.py`` (or
``tests/browser/conftest.py``), where pytest finds them without an import. A helper that one module
alone uses may stay in that module.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as email_policy
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest
from quart import Quart
from quart_auth import generate_auth_token

from app import create_app, start_services, stop_services
from app.auth import CSRF_COOKIE, SESSION_DAYS, csrf_token_for
from app.clock import Clock, FrozenClock
from app.config import Settings
from app.hours import ExceptionalPeriod, HoursSpec, RegularPeriod
from app.models import Booking, BookingStatus, ChargePoint, Charger, Role, Session, Station, StationStatus, User
from app.simulator import SimulatedChargePoint, connected
from app.state import state
from app.stations import ChargerSpec, insert_station
from tests.conftest import DEFAULT_PASSWORD, ApiClient, Backend
from workers.jobs import worker_options
from workers.resilient import Worker

if TYPE_CHECKING:
    from tests.browser.conftest import Api

KOLKATA = "Asia/Kolkata"
#: 12:00 in Kolkata (06:30 UTC) on the suite's day: a slot the Kolkata stations have open.
SLOT = "2026-12-02T12:00:00"
PAY = "/api/payments/process"

# -- sites ---------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def another_site(
    backend: Backend, clock: FrozenClock, *, fast_lane: bool = True, **settings: Any
) -> AsyncIterator[ApiClient]:
    """The same site built again, with other ``settings`` or every request going through Quart. It
    shares the running app's database connections and is never started itself. Its sign-in
    counters start empty (a generation of their own), even in a Redis other tests counted in."""
    other = create_app(replace(backend.settings, **settings), clock=clock, fast_lane=fast_lane)
    state(other).throttle.generation = secrets.randbits(48)
    try:
        yield ApiClient(other)
    finally:
        await state(other).throttle.close()


# -- stations -------------------------------------------------------------------------------------


def daily(begin: str, end: str) -> HoursSpec:
    """The same hours every day of the week."""
    return HoursSpec(regular_hours=tuple(RegularPeriod(day, begin, end) for day in range(1, 8)))


def open_until(end: datetime) -> HoursSpec:
    """Open from long before ``end`` until ``end``, then closed for good: one transition."""
    return HoursSpec(exceptional_openings=(ExceptionalPeriod(end - timedelta(days=30), end),))


async def make_station(
    name: str = "Hub",
    *,
    timezone: str = "UTC",
    hours: HoursSpec | None = None,
    chargers: int | Sequence[str | ChargerSpec] = 2,
    power_kw: float = 60.0,
    price: int = 15000,
    currency: str = "INR",
    status: StationStatus = StationStatus.ACTIVE,
    location: str = "1 Main Road",
    city: str = "Pune",
    latitude: float = 18.5,
    longitude: float = 73.8,
) -> Station:
    """A station written straight to the database, in UTC and open 04:00-20:00 every day unless
    told otherwise (the suite's clock starts at 05:00 UTC, so it is open and closes later today).

    ``chargers`` is a count of CCS2 chargers, or their kinds (each at ``power_kw``), or full specs.
    The presets below give the other modules' usual stations their own defaults.
    """
    kinds = ["CCS2"] * chargers if isinstance(chargers, int) else chargers
    return await insert_station(
        name=name,
        location=location,
        city=city,
        latitude=latitude,
        longitude=longitude,
        timezone=timezone,
        price_per_hour=price,
        currency=currency,
        status=status,
        hours=hours or daily("04:00", "20:00"),
        chargers=[kind if isinstance(kind, ChargerSpec) else ChargerSpec(kind, power_kw) for kind in kinds],
    )


#: The booking tests' station: Mumbai, open 08:00-22:00 in Kolkata where it is 10:30, three chargers.
make_kolkata_station = partial(
    make_station,
    name="Mumbai Central Charging Hub",
    timezone=KOLKATA,
    hours=daily("08:00", "22:00"),
    chargers=("CCS2", "CCS2", "CHADEMO"),
    power_kw=50.0,
    price=25_000,
    location="Mumbai Central",
    city="Mumbai",
    latitude=18.97,
    longitude=72.82,
)


async def add_station(
    name: str = "Mumbai Central Charging Hub",
    *,
    city: str = "Mumbai",
    location: str = "Dr Anandrao Nair Marg, Mumbai Central",
    timezone: str = KOLKATA,
    hours: HoursSpec | None = None,
    chargers: tuple[str, ...] = ("CCS2", "CCS2", "TYPE2", "CHADEMO"),
    latitude: float = 18.9690,
    longitude: float = 72.8205,
) -> int:
    """The public endpoints' station (what ``NEW_STATION`` describes), by id: those tests compare
    the API's answer with these fields."""
    station = await make_station(
        name,
        city=city,
        location=location,
        timezone=timezone,
        hours=hours or daily("08:00", "22:00"),
        chargers=chargers,
        latitude=latitude,
        longitude=longitude,
    )
    return station.id


#: The operator API's body for a new station.
NEW_STATION: dict[str, Any] = {
    "name": "Mumbai Central Charging Hub",
    "location": "Dr Anandrao Nair Marg, Mumbai Central",
    "city": "Mumbai",
    "latitude": 18.969,
    "longitude": 72.8205,
    "timezone": "Asia/Kolkata",
    "price_per_hour": "150",
    "currency": "inr",
    "hours": {"open_time": "08:00", "close_time": "22:00"},
    "chargers": [{"charger_type": "ccs2", "power_kw": 60}, {"charger_type": "TYPE2", "power_kw": 22}],
}

# -- bookings and payments ------------------------------------------------------------------------


async def book(client: ApiClient, station: Station | int, slot: str = SLOT, minutes: int = 60, **extra: Any) -> Any:
    """Ask for a slot through the API, as the signed-in ``client``; the response, unchecked."""
    station_id = station if isinstance(station, int) else station.id
    body = {"station_id": station_id, "slot_time": slot, "duration_minutes": minutes, **extra}
    return await client.post("/api/bookings", json=body)


async def insert_booking(
    station: Station | int,
    *,
    start: datetime,
    minutes: float = 60,
    status: BookingStatus = BookingStatus.CONFIRMED,
    hold_until: datetime | None = None,
    charger_number: int = 1,
    user: User | None = None,
) -> Booking:
    """A booking of one of the station's chargers written straight to the database, skipping the
    API's checks: for tests about what happens to bookings that exist. Without ``user``, it belongs
    to a driver of its own."""
    if user is None:
        tag = secrets.token_hex(4)
        user = await User.create(
            email=f"driver-{tag}@example.com", username=f"driver-{tag}", password_hash="x", role=Role.DRIVER
        )
    station_id = station if isinstance(station, int) else station.id
    charger = await Charger.get(station_id=station_id, charger_number=charger_number)
    return await Booking.create(
        user=user,
        station_id=station_id,
        charger=charger,
        slot_start=start,
        slot_end=start + timedelta(minutes=minutes),
        status=status,
        amount_due=15000,
        currency="INR",
        hold_expires_at=hold_until,
    )


async def pay(client: ApiClient, booking: dict[str, Any] | int, amount: str = "100.00", method: str = "UPI", **kw: Any):
    """Pay a booking through the API; ``key=`` sends it as the Idempotency-Key header."""
    booking_id = booking if isinstance(booking, int) else booking["booking_id"]
    headers = {"Idempotency-Key": kw.pop("key")} if "key" in kw else {}
    body = {"booking_id": booking_id, "payment_method": method, "amount": amount, **kw}
    return await client.post(PAY, json=body, headers=headers)


# -- clients and responses ------------------------------------------------------------------------


async def login(client: ApiClient, email: str, password: str = DEFAULT_PASSWORD, *, ip: str | None = None) -> Any:
    """Sign in through the API; the response, unchecked. ``ip`` is the address the request comes
    from, for the per-client limits on guessing."""
    scope = {"scope_base": {"client": (ip, 40000)}} if ip else {}
    return await client.post("/api/auth/login", json={"email": email, "password": password}, **scope)


async def signed_in(client: ApiClient, user: User) -> ApiClient:
    """Sign ``client`` in as ``user`` without the password round trip: argon2 costs ~80 ms a time,
    and the sign-in itself is tested elsewhere. The session lasts as long as a real one."""
    session = await Session.create(
        id=secrets.token_urlsafe(32),
        user=user,
        expires_at=state(client.app).clock.now() + timedelta(days=SESSION_DAYS),
    )
    client.raw.set_cookie("localhost", "chargeslot_session", generate_auth_token(client.raw, session.id))
    async with client.app.app_context():
        client.raw.set_cookie("localhost", CSRF_COOKIE, csrf_token_for(session.id))
    return client


async def ok(response: Any) -> Any:
    """The JSON body of a 200 response (the body is the failure message otherwise)."""
    body = await response.get_json()
    assert response.status_code == 200, body
    return body


async def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The body of a problem-JSON answer, after checking its status, code and content type: a
    client acts on all three."""
    body: dict[str, Any] = await response.get_json()
    assert (response.status_code, body.get("code")) == (status, code), body
    assert response.content_type == "application/problem+json"
    return body


# -- waiting for what happens asynchronously ------------------------------------------------------


async def eventually(check: Callable[[], Any], timeout: float = 10.0, what: str = "it") -> None:
    """Wait for something asynchronous (a reconnect, a delivery, a reload) to have happened.
    ``check`` may be a plain or an async function; ``what`` names it when it never happens."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        assert loop.time() < deadline, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.01)


async def receive(connection: Any, timeout: float = 5.0) -> dict[str, Any]:
    """The next message on a WebSocket, decoded."""
    message: dict[str, Any] = json.loads(await asyncio.wait_for(connection.receive(), timeout))
    return message


async def receive_type(connection: Any, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    """The next message of the given type, skipping heartbeats."""
    while True:
        message = await receive(connection, timeout)
        if message["type"] == kind:
            return message
        assert message["type"] == "ping", message


async def next_event(subscription: Any, kind: str = "status", timeout: float = 5.0) -> dict[str, Any]:
    """The next bus message of the given type, skipping the others."""
    while True:
        message: dict[str, Any] = await asyncio.wait_for(subscription.get(), timeout)
        if message.get("type") == kind:
            return message


def drain(subscription: Any) -> list[dict[str, Any]]:
    """What a bus subscription has received so far, without waiting for more."""
    messages = []
    while not subscription.queue.empty():
        messages.append(subscription.queue.get_nowait())
    return messages


# -- Redis and the production stack ---------------------------------------------------------------


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A throwaway redis-server on ``port``, which the test may stop (``terminate``) and restart."""
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(5)


async def wait_for_port(port: int) -> None:
    for _ in range(100):
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"redis on {port} did not start")


def require_redis_server() -> None:
    """Skip without a redis-server binary, except in CI, where its absence is a failure."""
    if not shutil.which("redis-server"):
        if os.environ.get("CI"):
            pytest.fail("redis-server is required")
        pytest.skip("redis-server not installed")


@contextlib.asynccontextmanager
async def own_redis() -> AsyncIterator[str]:
    """A Redis of the test's own, so workers' queues and keys never outlive the tests."""
    require_redis_server()
    port = free_port()
    with redis_server(port):
        await wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"


@contextlib.asynccontextmanager
async def live_stack(backend: Backend, redis_url: str, clock: Clock, prefix: str | None = None) -> AsyncIterator[Quart]:
    """A second web process on ``redis_url``, sharing the test database (already initialised):
    what production runs, with a Redis the test may stop and start. With ``prefix`` it shares that
    bus (the test app's, say) instead of one of its own."""
    if not backend.is_postgres:
        pytest.skip("the production pair: PostgreSQL and Redis")
    settings = replace(backend.settings, redis_url=redis_url, redis_prefix=prefix or f"live-{secrets.token_hex(4)}")
    web = create_app(settings, clock=clock)
    app_state = state(web)
    await start_services(app_state)
    try:
        assert await app_state.bus.wait_connected(5)  # type: ignore[attr-defined]
        yield web
    finally:
        await stop_services(app_state)


# -- the arq worker -------------------------------------------------------------------------------


def make_worker(web: Quart, **overrides: Any) -> Worker:
    """An arq worker configured as production's, for ``web``'s settings, that runs one burst."""
    options = worker_options(state(web).settings)
    options["ctx"]["db_ready"] = True  # the tests' database is initialised already
    return Worker(**{**options, "cron_jobs": [], "burst": True, "handle_signals": False, **overrides})


async def run_burst(*workers: Worker, timeout: float = 10.0) -> list[int]:
    """Run the workers until their queues are empty; the number of jobs each ran."""
    try:
        return list(await asyncio.wait_for(asyncio.gather(*(w.run_check() for w in workers)), timeout))
    finally:
        for worker in workers:
            await worker.close()


def real_now(clock: FrozenClock) -> datetime:
    """Tests with a worker run against real time: the worker uses the system clock."""
    now = datetime.now(UTC)
    clock.set(now)
    return now


async def never(seconds: float) -> None:
    """A sleeper that only a wake-up interrupts: the tests move the clock themselves."""
    await asyncio.Event().wait()


# -- the browser tests ----------------------------------------------------------------------------

SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"


async def create_station(api: Api, name: str, hours: dict[str, Any], timezone: str = "Asia/Kolkata") -> dict[str, Any]:
    """A station made through the operator API, with a name of its own so that tests never meet."""
    body = {
        "name": f"{name} {secrets.token_hex(2)}",
        "location": "Test Road 1",
        "city": "Testville",
        "latitude": 18.5,
        "longitude": 73.8,
        "timezone": timezone,
        "price_per_hour": "200.00",
        "currency": "INR",
        "hours": hours,
        "chargers": [{"charger_type": "CCS2", "power_kw": 60}, {"charger_type": "TYPE2", "power_kw": 22}],
    }
    station: dict[str, Any] = await api.call("POST", "/api/stations", body, expect=201)
    return station


async def close_now(api: Api, station_id: int, hours: float = 2) -> dict[str, Any]:
    """An exceptional closing from a minute ago for ``hours``, added through the operator API."""
    now = datetime.now(UTC)
    body = {
        "kind": "closing",
        "period_begin": (now - timedelta(minutes=1)).isoformat(),
        "period_end": (now + timedelta(hours=hours)).isoformat(),
    }
    exception: dict[str, Any] = await api.call("POST", f"/api/stations/{station_id}/exceptions", body, expect=201)
    return exception


async def sign_in(page: Any, credentials: dict[str, str], next_path: str = "/") -> None:
    """Sign in through the login page, as a person would, and land on ``next_path``."""
    await page.goto(f"/login?next={next_path}")
    await page.get_by_label("Email").fill(credentials["email"])
    await page.get_by_label("Password").fill(credentials["password"])
    await page.get_by_role("button", name="Sign in").click()
    # The login page's own address ends with ``next_path`` too: wait until it has been left.
    await page.wait_for_url(lambda url: urlsplit(url).path == urlsplit(next_path).path)


def kwh_shown(text: str) -> float:
    """The energy a page shows ("… 1.23 kWh …") as a number."""
    found = re.search(r"([\d.]+) kWh", text)
    assert found, f"no energy shown: {text!r}"
    return float(found.group(1))


async def energy_rises(figures: Any, seconds: float = 10) -> None:
    """The energy shown in ``figures`` (a locator) goes up while the page stays open."""
    first = kwh_shown(await figures.inner_text())

    async def rose() -> bool:
        return kwh_shown(await figures.inner_text()) > first

    await eventually(rose, seconds, "the energy rising on the page")


async def screenshot(page: Any, name: str, full_page: bool = True) -> None:
    """Keep a picture of the page under test-artifacts/, for reading after a run."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


#: axe-core as ``make install`` puts it (``tests/browser/axe``); injected by tests, never served.
AXE_SCRIPT = Path(__file__).resolve().parent / "browser" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
#: The impacts that fail a page; "minor" and "moderate" ones are reported by axe but tolerated.
AXE_FAILING = frozenset({"serious", "critical"})


async def accessibility_problems(page: Any, tolerated: frozenset[str] = frozenset()) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one readable line per
    offending element ("rule (impact): help — selector"), less the ``tolerated`` rule ids. The
    page's context must bypass the site's CSP, which (rightly) refuses the injected script."""
    if not AXE_SCRIPT.exists():
        pytest.fail(f"{AXE_SCRIPT} is missing: run `make install`")
    await page.add_script_tag(path=str(AXE_SCRIPT))
    # label-content-name-mismatch is one of axe's "experimental" rules, off unless asked for.
    options = {"resultTypes": ["violations"], "rules": {"label-content-name-mismatch": {"enabled": True}}}
    violations = await page.evaluate("async (options) => (await axe.run(document, options)).violations", options)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {' '.join(map(str, node['target']))}"
        for v in violations
        if v["impact"] in AXE_FAILING and v["id"] not in tolerated
        for node in v["nodes"]
    ]


# -- production processes: started, stopped and killed by the fault tests ------------------------

ROOT = Path(__file__).resolve().parents[1]


class RedisProcess:
    """A redis-server of the test's own on a free port, which the test stops and starts again
    (without persistence, so a restart loses every key, as a Redis that crashed would)."""

    def __init__(self) -> None:
        require_redis_server()
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._running = ExitStack()

    async def start(self) -> None:
        self._running.enter_context(redis_server(self.port))
        await wait_for_port(self.port)

    def stop(self) -> None:
        self._running.close()


def process_env(settings: Settings, redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    """The environment of a production process on the test's database and Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "TEST_"))}
    env.update(
        DATABASE_URL=settings.database_url,
        REDIS_URL=redis_url,
        REDIS_PREFIX=prefix,
        SECRET_KEY=settings.secret_key,
        COOKIE_SECURE="false",
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def procfile_command(kind: str) -> list[str]:
    """The Procfile's command for a kind of process, with the shell's ``${VAR:-default}``s filled in
    from the environment the test passes (``$PORT`` must be set there)."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == kind:
            return shlex.split(command)
    raise AssertionError(f"no {kind}: line in the Procfile")


def start_process(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    expanded = [_expand(part, env) for part in command]
    with log.open("wb") as out:
        return subprocess.Popen(
            expanded, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _expand(part: str, env: dict[str, str]) -> str:
    """``${NAME:-default}`` and ``$NAME`` as a shell would expand them from ``env``."""

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1) or match.group(3), match.group(2) or ""
        return env.get(name) or default

    return re.sub(r"\$\{(\w+):-([^}]*)\}|\$(\w+)", value, part)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Stop a process and every process it started (its session)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def answers(url: str, path: str = "/healthz") -> bool:
    """Whether a web process answers 200 on ``path`` (``/readyz``: database and bus are up too)."""
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(f"{url}{path}")).status_code == 200
    except httpx.HTTPError:
        return False


class Processes:
    """A test's production processes (the Procfile's commands), each logging to a file; all stopped at the end."""

    def __init__(self, backend: Backend, redis: RedisProcess, logs: Path) -> None:
        self.backend = backend
        self.redis = redis
        self.logs = logs
        self.prefix = f"procs-{secrets.token_hex(4)}"
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, kind: str, name: str, **env: str) -> subprocess.Popen[bytes]:
        environment = process_env(self.backend.settings, self.redis.url, self.prefix, **env)
        process = start_process(procfile_command(kind), environment, self.logs / f"{name}.log")
        self.started.append(process)
        return process

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    async def web(self, name: str, **env: str) -> str:
        """A web process that is up and ready (database and bus); returns its URL."""
        port = free_port()
        process = self.start("web", name, PORT=str(port), **env)
        url = f"http://127.0.0.1:{port}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while not await answers(url, "/readyz"):
            assert process.poll() is None, self.log(name)[-3000:]
            assert loop.time() < deadline, f"{name} not ready:\n{self.log(name)[-3000:]}"
            await asyncio.sleep(0.1)
        return url

    def stop_all(self) -> None:
        for process in self.started:
            stop_process(process)


# -- mail -----------------------------------------------------------------------------------------


class MailCatcher:
    """A real SMTP server (aiosmtpd) on a free port that keeps every message it is sent."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"smtp://mailer:secret@127.0.0.1:{self.port}"
        self.received: list[EmailMessage] = []
        self._controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(message_from_bytes(envelope.content, policy=email_policy))
        return "250 Message accepted"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self._controller = Controller(
            self, hostname="127.0.0.1", port=self.port, auth_require_tls=False, authenticator=self._authenticate
        )
        self._controller.start()

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        """Only the credentials in ``url`` sign in."""
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"mailer", b"secret")
        return AuthResult(success=ok)

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@contextlib.contextmanager
def mail_to(app: Quart, url: str, sender: str = "Chargeslot <bookings@charge.example>") -> Iterator[None]:
    """The app sends notification mail through ``url`` while inside (as with ``SMTP_URL``)."""
    from app.mail import Mailer

    services = state(app)
    original, services.mailer = services.mailer, Mailer(url, sender, timeout=2)
    try:
        yield
    finally:
        services.mailer = original


def calendar_of(message: EmailMessage) -> Any:
    """The calendar entry attached to a mail, parsed back."""
    from icalendar import Calendar

    (part,) = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    return Calendar.from_ical(part.get_payload(decode=True))


# -- serving an app that is running already, over real sockets ------------------------------------


class _NoLifespan:
    """An app whose start-up has run (under ``test_app`` or ``start_services``), as ASGI for Hypercorn,
    which would otherwise run start-up a second time."""

    def __init__(self, app: Quart) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


@contextlib.asynccontextmanager
async def served(app: Quart) -> AsyncIterator[str]:
    """``app`` served by Hypercorn on a free port in this event loop; yields its ``host:port``, for
    clients that need a real socket (an OCPP charge point, say)."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    port = free_port()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    stop = asyncio.Event()
    server = asyncio.ensure_future(serve(_NoLifespan(app), config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        await wait_for_port(port)
        yield f"127.0.0.1:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(server, 10)


# -- charge points ---------------------------------------------------------------------------------


async def linked_station(connectors: int = 1, **station: Any) -> tuple[Station, ChargePoint, str]:
    """A station whose first ``connectors`` chargers are the connectors of one charge point
    ``CP-1``; with the charge point's auth key."""
    from app import charge_points

    made = await make_station(chargers=max(2, connectors), **station)
    charge_point, key = await charge_points.create(made.id, "CP-1")
    for number in range(1, connectors + 1):
        charger = await Charger.get(station_id=made.id, charger_number=number)
        await charge_points.link_charger(made.id, charger.id, charge_point.id, number)
    return made, charge_point, key


@contextlib.asynccontextmanager
async def simulated_charger(
    address: str, key: str, identity: str = "CP-1", connectors: int = 1
) -> AsyncIterator[SimulatedChargePoint]:
    """A charge point made with the ``ocpp`` package, connected to the app served at ``address``."""
    async with connected(f"ws://{address}/ocpp/{identity}", key, connectors, say=lambda _: None) as point:
        yield point


@contextlib.asynccontextmanager
async def booted_charger(address: str, **station: Any) -> AsyncIterator[tuple[Station, SimulatedChargePoint]]:
    """A ``linked_station`` whose charge point is connected to ``address`` and has booted."""
    made, _, key = await linked_station(**station)
    async with simulated_charger(address, key) as point:
        await point.boot()
        yield made, point


async def received(point: SimulatedChargePoint, action: str, timeout: float = 10.0) -> dict[str, Any]:
    """The fields of the next command of that kind the charge point receives, skipping others."""
    while True:
        command = await asyncio.wait_for(point.received.get(), timeout)
        if command.action == action:
            return command.fields


def simulator_process(url: str, key: str, log: Path, meter_seconds: float = 1.0) -> subprocess.Popen[bytes]:
    """``chargeslot simulate-charger`` as a process of its own, connected to ``url``
    (``ws://host:port/ocpp/ID``), printing everything it sends and receives to ``log``."""
    command = [sys.executable, "-m", "app", "simulate-charger", "--url", url, "--key", key]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    return start_process([*command, "--meter-seconds", str(meter_seconds)], env, log)
