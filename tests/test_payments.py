"""Paying a booking: the final gate (server-clock recheck, exact amount), idempotency, declines and
refunds, and nobody else's payments."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from quart import Quart

from app.models import (
    Booking,
    BookingStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Role,
    Station,
    StationStatus,
    User,
)
from app.payment_provider import PaymentProvider, ProviderResult, SimulatedProvider
from app.state import state
from tests.conftest import ApiClient
from tests.helpers import PAY, book, ok, pay, problem, signed_in
from tests.helpers import make_kolkata_station as make_station

BEFORE_CLOSING = datetime(2026, 12, 2, 16, 25, tzinfo=UTC)  # 21:55 in Kolkata


class HeldProvider(SimulatedProvider):
    """Approves like the simulated provider, but each charge waits until the test lets it go."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.charges = 0

    async def charge(self, amount: int, currency: str, method: PaymentMethod, reference: str) -> ProviderResult:
        self.charges += 1
        self.entered.set()
        await self.release.wait()
        return await super().charge(amount, currency, method, reference)


@pytest.fixture
def use_provider(app: Quart) -> Iterator[Any]:
    app_state = state(app)
    original = app_state.provider

    def use(provider: PaymentProvider) -> PaymentProvider:
        app_state.provider = provider
        return provider

    yield use
    app_state.provider = original


@pytest.fixture
async def held(driver_client: ApiClient) -> dict[str, Any]:
    """A booking of the signed-in driver at a station charging 100.00 an hour: 100.00 due."""
    station = await make_station(price=10_000)
    return dict(await ok(await book(driver_client, station)))


async def booking_status(booking: dict[str, Any]) -> BookingStatus:
    return BookingStatus((await Booking.get(id=booking["booking_id"])).status)


# -- the happy path ------------------------------------------------------------------------------


async def test_paying_the_amount_due_pays_the_booking(driver_client: ApiClient, held) -> None:
    quote = await ok(await driver_client.get(f"/api/bookings/{held['booking_id']}/quote"))
    response = await pay(driver_client, held, amount=quote["amount_due"])
    body = await ok(response)
    assert body == {
        "payment_id": body["payment_id"],
        "booking_id": held["booking_id"],
        "transaction_id": body["transaction_id"],
        "amount": "100.00",
        "currency": "INR",
        "payment_method": "UPI",
        "status": "SUCCESS",
        "created_at": body["created_at"],
    }
    assert body["transaction_id"].startswith("TXN_")
    assert await booking_status(held) == BookingStatus.PAID
    assert (await ok(await driver_client.get(f"/api/bookings/{held['booking_id']}")))["status"] == "PAID"
    assert await ok(await driver_client.get(f"/api/payments/{body['payment_id']}")) == body
    assert await ok(await driver_client.get("/api/payments")) == [body]
    # Paid, the booking keeps its charger after the hold would have run out.
    state(driver_client.app).clock.advance(timedelta(minutes=30))  # type: ignore[attr-defined]
    assert (await ok(await driver_client.get(f"/api/bookings/{held['booking_id']}")))["status"] == "PAID"


async def test_amount_may_be_written_with_or_without_decimals(driver_client: ApiClient, held) -> None:
    for written in ("100", "100.0", "100.000", "100.00"):
        booking = await ok(await book(driver_client, held["station_id"], slot="2026-12-02T15:00:00"))
        assert (await ok(await pay(driver_client, booking, amount=written)))["amount"] == "100.00"
        await ok(await driver_client.post(f"/api/bookings/{booking['booking_id']}/cancel"))


# -- the checks, in the original design's order --------------------------------------------------


async def test_a_paid_charger_stays_taken_after_the_hold_would_have_lapsed(driver_client: ApiClient, clock) -> None:
    station = await make_station(price=10_000)
    status_path = f"/api/stations/{station.id}/status"
    held = await ok(await book(driver_client, station, slot="2026-12-02T10:30:00"))  # starts now
    assert (await ok(await driver_client.get(status_path)))["available_chargers"] == 2
    await ok(await pay(driver_client, held))
    clock.advance(timedelta(minutes=20))
    assert (await ok(await driver_client.get(status_path)))["available_chargers"] == 2
    clock.advance(timedelta(minutes=40))  # the slot is over
    assert (await ok(await driver_client.get(status_path)))["available_chargers"] == 3


@pytest.mark.parametrize(
    "body",
    [
        {"payment_method": "UPI", "amount": "100.00"},
        {"booking_id": 1, "payment_method": "CASH", "amount": "100.00"},
        {"booking_id": 1, "payment_method": "UPI"},
        {"booking_id": 1, "payment_method": "UPI", "amount": 100},
        {"booking_id": 1, "payment_method": "UPI", "amount": 100.0},
        {"booking_id": 2**31, "payment_method": "UPI", "amount": "100.00"},
    ],
)
async def test_malformed_payment_is_422_even_before_sign_in(client: ApiClient, db, body: dict[str, Any]) -> None:
    await problem(await client.post(PAY, json=body), 422, "validation_error")


async def test_payment_needs_a_signed_in_user(client: ApiClient, db) -> None:
    await problem(await pay(client, 1), 401, "unauthenticated")


async def test_unknown_booking_is_404(driver_client: ApiClient, db) -> None:
    await problem(await pay(driver_client, 999), 404, "not_found")


async def test_another_users_booking_cannot_be_paid_and_is_404(driver_client: ApiClient, held, other_client, make_user):
    intruder = await make_user(Role.DRIVER)
    await signed_in(other_client, intruder)
    await problem(await pay(other_client, held), 404, "not_found")
    assert await booking_status(held) == BookingStatus.CONFIRMED


async def test_paid_booking_is_not_payable_again(driver_client: ApiClient, held) -> None:
    await ok(await pay(driver_client, held))
    body = await problem(await pay(driver_client, held), 409, "booking_not_payable")
    assert "already paid" in body["detail"]
    assert await Payment.filter(status=PaymentStatus.SUCCESS).count() == 1


async def test_booking_whose_hold_ran_out_is_not_payable(driver_client: ApiClient, held, clock) -> None:
    clock.advance(timedelta(minutes=10))
    await problem(await pay(driver_client, held), 409, "booking_not_payable")
    assert await Payment.all().count() == 0


async def test_cancelled_booking_is_not_payable(driver_client: ApiClient, held) -> None:
    await ok(await driver_client.post(f"/api/bookings/{held['booking_id']}/cancel"))
    await problem(await pay(driver_client, held), 409, "booking_not_payable")


async def test_not_payable_is_reported_before_a_closed_station(driver_client: ApiClient, held, clock) -> None:
    await ok(await pay(driver_client, held))
    clock.set(datetime(2026, 12, 2, 17, 30, tzinfo=UTC))
    await problem(await pay(driver_client, held), 409, "booking_not_payable")


async def book_just_before_closing(client: ApiClient, driver: User, clock: Any) -> dict[str, Any]:
    """At 21:55 in Kolkata (closing at 22:00) book tomorrow 10:00, then move the clock to 22:01:
    the station is closed while the hold still runs."""
    station = await make_station(price=10_000)
    clock.set(BEFORE_CLOSING)
    await signed_in(client, driver)
    held = dict(await ok(await book(client, station, slot="2026-12-03T10:00:00")))
    clock.advance(timedelta(minutes=6))
    return held


async def test_payment_is_blocked_when_the_station_closed_after_booking(client: ApiClient, driver, clock) -> None:
    held = await book_just_before_closing(client, driver, clock)
    body = await problem(await pay(client, held), 403, "station_closed")
    assert body["detail"] == "Payment blocked. Station is closed."
    assert await booking_status(held) == BookingStatus.CONFIRMED
    assert await Payment.all().count() == 0
    quote = await ok(await client.get(f"/api/bookings/{held['booking_id']}/quote"))
    assert quote["payable"] is True


async def test_closed_station_is_reported_before_an_inactive_user_or_a_wrong_amount(
    client: ApiClient, driver, clock
) -> None:
    held = await book_just_before_closing(client, driver, clock)
    await User.filter(id=driver.id).update(is_active=False)
    await problem(await pay(client, held, amount="1.00"), 403, "station_closed")
    clock.set(BEFORE_CLOSING)
    await problem(await pay(client, held, amount="1.00"), 403, "user_inactive")
    await User.filter(id=driver.id).update(is_active=True)
    await problem(await pay(client, held, amount="1.00"), 400, "amount_invalid")


async def test_station_taken_out_of_service_after_booking_takes_no_payment(driver_client: ApiClient, held) -> None:
    await Station.filter(id=held["station_id"]).update(status=StationStatus.MAINTENANCE)
    await problem(await pay(driver_client, held), 403, "station_inactive")


async def test_inactive_user_cannot_pay(driver_client: ApiClient, held, driver) -> None:
    await User.filter(id=driver.id).update(is_active=False)
    await problem(await pay(driver_client, held), 403, "user_inactive")
    assert await booking_status(held) == BookingStatus.CONFIRMED


MALFORMED_OR_WRONG_AMOUNTS = (
    "99.99",
    "100.01",
    "100.001",
    "-5",
    "-100.00",
    "abc",
    "NaN",
    "1e309",
    "Infinity",
    "",
    " 100",
    "100.",
    "+100",
    "\uff11\uff10\uff10",  # full-width digits
)


async def test_amount_must_equal_the_amount_due_exactly(driver_client: ApiClient, held) -> None:
    for amount in MALFORMED_OR_WRONG_AMOUNTS:
        body = await (await pay(driver_client, held, amount=amount)).get_json()
        assert (body["status"], body["code"]) == (400, "amount_invalid"), amount
    assert await booking_status(held) == BookingStatus.CONFIRMED
    assert await Payment.all().count() == 0
    await ok(await pay(driver_client, held, amount="100.00"))


async def test_user_id_in_the_body_must_be_the_payer(driver_client: ApiClient, held, driver) -> None:
    await problem(await pay(driver_client, held, user_id=driver.id + 7), 403, "forbidden")
    await ok(await pay(driver_client, held, user_id=driver.id))


# -- declines and refunds ------------------------------------------------------------------------


@pytest.fixture
async def unlucky(driver_client: ApiClient) -> dict[str, Any]:
    """A booking of 60.13 due: the simulated provider declines it by WALLET."""
    station = await make_station(price=6_013)
    return dict(await ok(await book(driver_client, station)))


async def test_declined_payment_is_402_and_a_retry_by_another_method_succeeds(driver_client: ApiClient, unlucky):
    declined = await problem(
        await pay(driver_client, unlucky, amount="60.13", method="WALLET"), 402, "payment_declined"
    )
    assert declined["reason"] == "insufficient_funds"
    failed = await Payment.get(id=declined["payment_id"])
    assert (failed.status, failed.transaction_id) == (PaymentStatus.FAILED, declined["transaction_id"])
    assert await booking_status(unlucky) == BookingStatus.CONFIRMED

    paid = await ok(await pay(driver_client, unlucky, amount="60.13", method="CARD"))
    assert paid["status"] == "SUCCESS"
    assert await booking_status(unlucky) == BookingStatus.PAID
    listed = await ok(await driver_client.get("/api/payments"))
    assert [p["status"] for p in listed] == ["SUCCESS", "FAILED"]


async def test_cancelling_a_paid_booking_refunds_it(driver_client: ApiClient, held) -> None:
    paid = await ok(await pay(driver_client, held))
    cancelled = await ok(await driver_client.post(f"/api/bookings/{held['booking_id']}/cancel"))
    assert cancelled["status"] == "CANCELLED"
    assert (await ok(await driver_client.get(f"/api/payments/{paid['payment_id']}")))["status"] == "REFUNDED"


async def test_paid_booking_cannot_be_cancelled_once_its_slot_has_started(driver_client: ApiClient, held, clock):
    paid = await ok(await pay(driver_client, held))
    detail = f"/api/bookings/{held['booking_id']}"
    assert (await ok(await driver_client.get(detail)))["cancellable"] is True
    clock.set(datetime(2026, 12, 2, 6, 30, tzinfo=UTC))  # 12:00 in Kolkata, the slot's start
    # What pages offer follows the very rule cancelling applies.
    assert (await ok(await driver_client.get(detail)))["cancellable"] is False
    assert [b["cancellable"] for b in await ok(await driver_client.get("/api/bookings"))] == [False]
    await problem(await driver_client.post(f"/api/bookings/{held['booking_id']}/cancel"), 409, "conflict")
    assert (await Payment.get(id=paid["payment_id"])).status == PaymentStatus.SUCCESS
    assert await booking_status(held) == BookingStatus.PAID


async def test_booking_cancelled_while_its_payment_is_in_flight_is_refunded(
    driver_client: ApiClient, held, use_provider
) -> None:
    provider = use_provider(HeldProvider())
    paying = asyncio.create_task(pay(driver_client, held))
    await asyncio.wait_for(provider.entered.wait(), 5)
    await ok(await driver_client.post(f"/api/bookings/{held['booking_id']}/cancel"))
    provider.release.set()
    await problem(await paying, 409, "booking_not_payable")
    assert await booking_status(held) == BookingStatus.CANCELLED
    assert [p.status for p in await Payment.all()] == [PaymentStatus.REFUNDED]


# -- Idempotency-Key -----------------------------------------------------------------------------


async def test_same_key_and_body_replays_the_stored_answer(driver_client: ApiClient, held) -> None:
    first = await pay(driver_client, held, key="pay-1")
    again = await pay(driver_client, held, key="pay-1")
    assert (await ok(again)) == (await ok(first))
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await Payment.all().count() == 1


async def test_same_key_with_another_body_is_422(driver_client: ApiClient, held) -> None:
    await ok(await pay(driver_client, held, key="pay-1"))
    await problem(await pay(driver_client, held, key="pay-1", method="CARD"), 422, "idempotency_key_reused")


async def test_keys_belong_to_their_user(driver_client: ApiClient, held, other_client, make_user) -> None:
    await ok(await pay(driver_client, held, key="shared-key"))
    rival = await make_user(Role.DRIVER)
    await signed_in(other_client, rival)
    rivals = await ok(await book(other_client, held["station_id"], slot="2026-12-02T15:00:00"))
    assert (await ok(await pay(other_client, rivals, key="shared-key")))["booking_id"] == rivals["booking_id"]


async def test_same_key_while_the_first_is_in_flight_is_409(driver_client: ApiClient, held, use_provider) -> None:
    provider = use_provider(HeldProvider())
    first = asyncio.create_task(pay(driver_client, held, key="pay-1"))
    await asyncio.wait_for(provider.entered.wait(), 5)
    await problem(await pay(driver_client, held, key="pay-1"), 409, "idempotency_in_progress")
    # Another key, or none, must not charge a second time either.
    await problem(await pay(driver_client, held, key="pay-2"), 409, "booking_not_payable")
    await problem(await pay(driver_client, held), 409, "booking_not_payable")
    provider.release.set()
    paid = await ok(await first)
    assert provider.charges == 1
    assert (await ok(await pay(driver_client, held, key="pay-1")))["transaction_id"] == paid["transaction_id"]


async def test_a_declined_answer_is_replayed_and_a_new_key_can_pay(driver_client: ApiClient, unlucky) -> None:
    declined = await problem(await pay(driver_client, unlucky, "60.13", "WALLET", key="k1"), 402, "payment_declined")
    replayed = await pay(driver_client, unlucky, "60.13", "WALLET", key="k1")
    assert await problem(replayed, 402, "payment_declined") == declined
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    await ok(await pay(driver_client, unlucky, "60.13", "UPI", key="k2"))
    assert await Payment.filter(status=PaymentStatus.FAILED).count() == 1


async def test_a_refusal_before_charging_is_not_stored_so_the_key_can_be_retried(
    client: ApiClient, driver, clock
) -> None:
    held = await book_just_before_closing(client, driver, clock)
    await problem(await pay(client, held, key="pay-1"), 403, "station_closed")
    clock.set(BEFORE_CLOSING + timedelta(minutes=1))
    await ok(await pay(client, held, key="pay-1"))


async def test_malformed_idempotency_key_is_422(driver_client: ApiClient, held) -> None:
    body = await problem(await pay(driver_client, held, key="x" * 201), 422, "validation_error")
    assert body["errors"][0]["loc"] == ["header", "Idempotency-Key"]


# -- who sees what -------------------------------------------------------------------------------


async def test_other_users_payments_are_404_and_not_listed(
    driver_client: ApiClient, held, other_client, operator_client, make_user
) -> None:
    paid = await ok(await pay(driver_client, held))
    rival = await make_user(Role.DRIVER)
    rival_client = ApiClient(driver_client.app)
    await signed_in(rival_client, rival)
    await problem(await rival_client.get(f"/api/payments/{paid['payment_id']}"), 404, "not_found")
    assert await ok(await rival_client.get("/api/payments")) == []
    assert [p["payment_id"] for p in await ok(await operator_client.get("/api/payments"))] == [paid["payment_id"]]
    assert (await ok(await operator_client.get(f"/api/payments/{paid['payment_id']}")))["status"] == "SUCCESS"


@pytest.mark.parametrize("query", ["booking_id=2147483648", "offset=9223372036854775808"])
async def test_list_filters_beyond_what_can_be_stored_are_422(operator_client: ApiClient, query: str) -> None:
    await problem(await operator_client.get(f"/api/payments?{query}"), 422, "validation_error")


async def test_payment_flow_is_documented_with_examples(client: ApiClient, db) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    operation = spec["paths"]["/api/payments/process"]["post"]
    assert "Idempotency-Key" in operation["description"]
    assert {"200", "400", "402", "403", "404", "409", "422"} <= set(operation["responses"])
    assert "idempotency-key" in [p["name"].lower() for p in operation.get("parameters", [])]
    request_schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert request_schema["examples"][0]["amount"] == "250.00"
    declined = operation["responses"]["402"]["content"]["application/problem+json"]["schema"]
    assert declined["examples"][0]["code"] == "payment_declined"
    assert "/api/payments/{payment_id}" in spec["paths"]
    assert "/api/payments" in spec["paths"]
