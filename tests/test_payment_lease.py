"""An Idempotency-Key whose attempt died is a lease that lapses: a retry with the same key takes it
over and is charged at most once, because the provider deduplicates by the attempt's reference."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import Quart
from quart_auth import generate_auth_token

from app import payments
from app.auth import CSRF_COOKIE, csrf_token_for
from app.hours import HoursSpec
from app.models import Booking, BookingStatus, IdempotencyRecord, Payment, PaymentMethod, PaymentStatus, Session, User
from app.payment_provider import ProviderResult, SimulatedProvider
from app.payments import LEASE
from tests.conftest import TEST_SECRET, ApiClient, Backend
from tests.test_bookings import make_station, problem
from tests.test_payments import HeldProvider, held, pay, use_provider

__all__ = ["held", "use_provider"]  # the fixtures

ROOT = Path(__file__).resolve().parents[1]


class ChargesThenHangs(SimulatedProvider):
    """Charges, then never answers the first caller: what an attempt whose process died right after
    the charge looks like from outside. Later callers get their answer."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.charged = asyncio.Event()
        self.hang = asyncio.Event()

    async def charge(self, amount: int, currency: str, method: PaymentMethod, reference: str) -> ProviderResult:
        self.calls.append(reference)
        result = await super().charge(amount, currency, method, reference)
        if len(self.calls) == 1:
            self.charged.set()
            await self.hang.wait()
        return result


@pytest.fixture
async def hung(driver_client: ApiClient, held: dict[str, Any], use_provider: Any) -> Any:
    """A payment under key ``pay-1`` that the provider charged and that never finished."""
    provider = use_provider(ChargesThenHangs())
    attempt = asyncio.create_task(pay(driver_client, held, key="pay-1"))
    await asyncio.wait_for(provider.charged.wait(), 5)
    return provider, attempt


async def test_a_retry_after_the_lease_lapsed_gets_the_charge_the_dead_attempt_made(
    driver_client: ApiClient, held: dict[str, Any], hung: Any, clock: Any
) -> None:
    provider, dead = hung
    await problem(await pay(driver_client, held, key="pay-1"), 409, "idempotency_in_progress")

    clock.advance(LEASE + timedelta(seconds=1))
    retried = await pay(driver_client, held, key="pay-1")
    assert retried.status_code == 200, await retried.get_json()
    paid = await retried.get_json()
    first_charge = await provider.charge(0, "INR", PaymentMethod.UPI, provider.calls[0])  # what the provider kept
    assert paid["transaction_id"] == first_charge.transaction_id
    assert [p.status for p in await Payment.all()] == [PaymentStatus.SUCCESS]
    assert (await Booking.get(id=held["booking_id"])).status == BookingStatus.PAID

    # Had the first attempt only been slow, its late answer is the same payment, not a refund.
    provider.hang.set()
    late = await dead
    assert (await late.get_json())["transaction_id"] == paid["transaction_id"]
    assert [p.status for p in await Payment.all()] == [PaymentStatus.SUCCESS]


async def test_a_lapsed_lease_is_not_taken_over_with_another_body(
    driver_client: ApiClient, held: dict[str, Any], hung: Any, clock: Any
) -> None:
    provider, dead = hung
    clock.advance(LEASE + timedelta(seconds=1))
    await problem(await pay(driver_client, held, key="pay-1", method="CARD"), 422, "idempotency_key_reused")
    provider.hang.set()
    assert (await dead).status_code == 200
    assert len(provider.calls) == 1


async def test_a_slow_attempt_renews_its_lease_so_a_retry_does_not_take_it_over(
    driver_client: ApiClient, held: dict[str, Any], use_provider: Any, clock: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(payments, "LEASE_RENEWAL", timedelta(milliseconds=20))
    provider = use_provider(HeldProvider())
    slow = asyncio.create_task(pay(driver_client, held, key="pay-1"))
    await asyncio.wait_for(provider.entered.wait(), 5)
    taken_until = clock.now() + LEASE
    deadline = asyncio.get_running_loop().time() + 10
    while not await IdempotencyRecord.filter(key__endswith="pay-1", expires_at__gt=taken_until).exists():
        assert asyncio.get_running_loop().time() < deadline, "the lease was never renewed"
        await asyncio.sleep(0.02)
    clock.advance(LEASE)  # where the lease would have lapsed without renewal
    await problem(await pay(driver_client, held, key="pay-1"), 409, "idempotency_in_progress")
    provider.release.set()
    assert (await slow).status_code == 200
    assert provider.charges == 1


async def test_a_key_whose_record_was_purged_still_replays_from_its_payment(
    driver_client: ApiClient, held: dict[str, Any], clock: Any
) -> None:
    paid = await (await pay(driver_client, held, key="pay-1")).get_json()
    clock.advance(timedelta(hours=25))
    await IdempotencyRecord.all().delete()  # what the close-out's purge does after 24 hours
    again = await pay(driver_client, held, key="pay-1")
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
    assert (await again.get_json())["transaction_id"] == paid["transaction_id"]
    await problem(await pay(driver_client, held, key="pay-1", method="CARD"), 422, "idempotency_key_reused")
    assert await Payment.all().count() == 1


# -- a real web process killed mid-payment ---------------------------------------------------------


@dataclass
class WebProcess:
    """``tests/lease_server.py`` under Hypercorn on a port the kernel picks, on the test's database."""

    process: asyncio.subprocess.Process
    base: str

    @classmethod
    async def start(cls, backend: Backend, gate: Path, *, ahead: timedelta = timedelta()) -> WebProcess:
        env = {
            **os.environ,
            "DATABASE_URL": backend.settings.database_url,
            "REDIS_URL": backend.settings.redis_url or "",
            "REDIS_PREFIX": f"{backend.settings.redis_prefix}-lease",
            "SECRET_KEY": TEST_SECRET,
            "COOKIE_SECURE": "false",
            "RUN_BACKGROUND_TASKS": "false",
            "LEASE_TEST_GATE": str(gate),
            "LEASE_TEST_CLOCK_AHEAD": str(ahead.total_seconds()),
        }
        log = gate / f"hypercorn-{secrets.token_hex(4)}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "hypercorn", "tests.lease_server:create()", "--bind", "127.0.0.1:0"),
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # Hypercorn serves from a child: signals go to the group
            )
        deadline = asyncio.get_running_loop().time() + 60
        async with httpx.AsyncClient() as client:
            while asyncio.get_running_loop().time() < deadline:
                assert process.returncode is None, log.read_text()
                if bound := re.search(r"Running on (http://127\.0\.0\.1:\d+)", log.read_text()):
                    with contextlib.suppress(httpx.TransportError):
                        if (await client.get(bound[1] + "/healthz")).status_code == 200:
                            return cls(process, bound[1])
                await asyncio.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError(f"the web process did not come up: {log.read_text()}")

    async def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would end it: nothing runs after."""
        os.killpg(self.process.pid, signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process.returncode is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 15)


async def session_headers(app: Quart, user: User) -> dict[str, str]:
    """A signed-in browser's cookie and CSRF header, valid by the real clock the web process uses."""
    session = await Session.create(
        id=secrets.token_urlsafe(32), user=user, expires_at=datetime.now(UTC) + timedelta(days=1)
    )
    async with app.app_context():
        csrf = csrf_token_for(session.id)
    cookie = generate_auth_token(app.test_client(), session.id)
    return {"Cookie": f"chargeslot_session={cookie}; {CSRF_COOKIE}={csrf}", "X-CSRF-Token": csrf}


async def wait_for_file(path: Path) -> None:
    deadline = asyncio.get_running_loop().time() + 30
    while not await asyncio.to_thread(path.exists):
        assert asyncio.get_running_loop().time() < deadline, f"{path.name} never appeared"
        await asyncio.sleep(0.02)


async def test_a_retry_takes_over_the_key_of_a_web_process_killed_mid_payment(
    app: Quart, db: Backend, driver: User, tmp_path: Path
) -> None:
    if not db.is_postgres:
        pytest.skip("real web processes run against the production pair")
    station = await make_station(hours=HoursSpec(twentyfourseven=True), timezone="UTC", price=10_000)
    headers = await session_headers(app, driver)
    slot = (datetime.now(UTC) + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    body = {"station_id": station.id, "slot_time": slot.isoformat(), "duration_minutes": 60}

    dying = await WebProcess.start(db, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=dying.base, headers=headers, timeout=30) as client:
            booked = (await client.post("/api/bookings", json=body)).json()
            payment = {"booking_id": booked["booking_id"], "payment_method": "UPI", "amount": booked["amount_due"]}
            paying = asyncio.create_task(
                client.post("/api/payments/process", json=payment, headers={"Idempotency-Key": "crash-1"})
            )
            await wait_for_file(tmp_path / "asked")
            await dying.kill()
            with pytest.raises(httpx.TransportError):
                await paying
    finally:
        await dying.stop()
    (tmp_path / "open").touch()

    async def retry(web: WebProcess) -> httpx.Response:
        async with httpx.AsyncClient(base_url=web.base, headers=headers, timeout=30) as client:
            return await client.post("/api/payments/process", json=payment, headers={"Idempotency-Key": "crash-1"})

    soon = await WebProcess.start(db, tmp_path)
    try:
        refused = await retry(soon)
        assert (refused.status_code, refused.json()["code"]) == (409, "idempotency_in_progress")
    finally:
        await soon.stop()

    later = await WebProcess.start(db, tmp_path, ahead=LEASE + timedelta(seconds=1))
    try:
        paid = await retry(later)
        assert paid.status_code == 200, paid.text
        replayed = await retry(later)
        assert replayed.json() == paid.json() and replayed.headers["Idempotent-Replayed"] == "true"
    finally:
        await later.stop()
    assert (tmp_path / "charged").read_text().split() == [paid.json()["transaction_id"]]
    assert [p.status for p in await Payment.all()] == [PaymentStatus.SUCCESS]
    assert (await Booking.get(id=booked["booking_id"])).status == BookingStatus.PAID
