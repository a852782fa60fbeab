"""When an operator's change makes a booking impossible, it is moved or cancelled and refunded —
never left CONFIRMED or PAID — and a dry run says so without changing anything."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from quart import Quart

from app.closeout import close_out
from app.hours import HoursSpec
from app.models import (
    Booking,
    BookingStatus,
    Charger,
    ChargerStatus,
    Notification,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Station,
)
from app.payment_provider import ProviderResult, SimulatedProvider
from app.state import state
from app.stations import write_hours
from tests.conftest import ApiClient
from tests.helpers import daily, make_station

#: 12:00-13:00 at the station (Kolkata) on the test day, 2 December 2026.
SLOT = "2026-12-02T12:00:00"


@pytest.fixture
async def station() -> Station:
    return await make_station(
        timezone="Asia/Kolkata", hours=HoursSpec(twentyfourseven=True), chargers=("CCS2", "TYPE2", "CCS2")
    )


async def paid_booking(client: ApiClient, station: Station, charger_number: int = 1) -> dict[str, Any]:
    charger = await Charger.get(station_id=station.id, charger_number=charger_number)
    booked = await client.post(
        "/api/bookings",
        json={"station_id": station.id, "slot_time": SLOT, "duration_minutes": 60, "charger_id": charger.id},
    )
    body = await booked.get_json()
    assert booked.status_code == 200, body
    paid = await client.post(
        "/api/payments/process",
        json={"booking_id": body["booking_id"], "payment_method": PaymentMethod.UPI, "amount": body["amount_due"]},
    )
    assert paid.status_code == 200, await paid.get_json()
    return dict(body)


async def take_out_of_service(client: ApiClient, station: Station, number: int, query: str = "") -> Any:
    charger = await Charger.get(station_id=station.id, charger_number=number)
    response = await client.patch(
        f"/api/stations/{station.id}/chargers/{charger.id}{query}", json={"status": "OUT_OF_SERVICE"}
    )
    body = await response.get_json()
    assert response.status_code == 200, body
    return body


async def booking(client: ApiClient, booking_id: int) -> Any:
    return await (await client.get(f"/api/bookings/{booking_id}")).get_json()


async def told(client: ApiClient) -> dict[str, Any]:
    """The driver's newest notification."""
    listed = await (await client.get("/api/me/notifications")).get_json()
    return dict(listed["items"][0])


async def told_cancelled(client: ApiClient, booking_id: int, why: str) -> None:
    """The driver was told of the cancellation, why, and of the refund; the history says so too."""
    latest = await told(client)
    assert (latest["kind"], latest["booking_id"]) == ("booking_cancelled", booking_id)
    assert f"We had to cancel it: {why}." in latest["body"]
    assert "A full refund of 150.00 INR is on its way." in latest["body"]
    detail = await booking(client, booking_id)
    assert detail["history"][-1]["event"] == "cancelled"
    assert detail["refund"] == {"amount": "150.00", "currency": "INR", "status": "REFUNDED"}


async def test_a_booking_on_a_charger_taken_out_of_service_moves_to_a_free_one_of_its_type(
    driver_client: ApiClient, operator_client: ApiClient, station: Station
) -> None:
    mine = await paid_booking(driver_client, station, charger_number=1)
    answer = await take_out_of_service(operator_client, station, 1)
    assert answer["affected_bookings"] == {"moved": 1, "cancelled": 0, "booking_ids": [mine["booking_id"]]}
    now = await booking(driver_client, mine["booking_id"])
    assert (now["status"], now["charger_number"], now["charger_type"]) == ("PAID", 3, "CCS2")
    latest = await told(driver_client)
    assert (latest["kind"], latest["title"]) == ("booking_moved", "Your booking moved to charger 3")
    assert "Charger 1 at Hub is out of service." in latest["body"]
    assert now["history"][-1]["detail"].startswith("Moved from charger 1 to charger 3")


async def test_with_no_free_charger_of_its_type_it_is_cancelled_and_refunded(
    app: Quart, driver_client: ApiClient, operator_client: ApiClient, station: Station, make_user: Any
) -> None:
    mine = await paid_booking(driver_client, station, charger_number=1)
    someone_else = ApiClient(app)
    await someone_else.sign_in(await make_user())
    await paid_booking(someone_else, station, charger_number=3)  # the only other CCS2 is taken
    answer = await take_out_of_service(operator_client, station, 1)
    assert answer["affected_bookings"] == {"moved": 0, "cancelled": 1, "booking_ids": [mine["booking_id"]]}
    now = await booking(driver_client, mine["booking_id"])
    assert (now["status"], now["cancel_reason"]) == ("CANCELLED", "charger_out_of_service")
    assert (await Payment.get(booking_id=mine["booking_id"])).status == PaymentStatus.REFUNDED
    why = "your charger is out of service and no other one of its type is free"
    await told_cancelled(driver_client, mine["booking_id"], why)


async def test_an_exceptional_closing_over_the_slot_cancels_and_refunds_it(
    driver_client: ApiClient, operator_client: ApiClient, station: Station
) -> None:
    mine = await paid_booking(driver_client, station)
    closing = {"kind": "closing", "period_begin": "2026-12-02T06:00:00Z", "period_end": "2026-12-02T08:00:00Z"}
    added = await operator_client.post(f"/api/stations/{station.id}/exceptions", json=closing)
    assert added.status_code == 201
    assert (await added.get_json())["affected_bookings"]["cancelled"] == 1
    now = await booking(driver_client, mine["booking_id"])
    assert (now["status"], now["cancel_reason"]) == ("CANCELLED", "station_closed")
    assert (await Payment.get(booking_id=mine["booking_id"])).status == PaymentStatus.REFUNDED
    await told_cancelled(driver_client, mine["booking_id"], "the station is now closed during your slot")


async def test_new_hours_that_leave_out_the_slot_cancel_it(
    driver_client: ApiClient, operator_client: ApiClient, station: Station
) -> None:
    mine = await paid_booking(driver_client, station)
    replaced = await operator_client.put(
        f"/api/stations/{station.id}/hours", json={"open_time": "08:00", "close_time": "11:00"}
    )
    assert (await replaced.get_json())["affected_bookings"]["booking_ids"] == [mine["booking_id"]]
    assert (await booking(driver_client, mine["booking_id"]))["cancel_reason"] == "station_closed"
    await told_cancelled(driver_client, mine["booking_id"], "the station is now closed during your slot")


@pytest.mark.parametrize("status", ["INACTIVE", "MAINTENANCE"])
async def test_a_station_that_stops_taking_bookings_cancels_them(
    driver_client: ApiClient, operator_client: ApiClient, station: Station, status: str
) -> None:
    mine = await paid_booking(driver_client, station)
    changed = await operator_client.patch(f"/api/stations/{station.id}", json={"status": status})
    assert (await changed.get_json())["affected_bookings"]["cancelled"] == 1
    now = await booking(driver_client, mine["booking_id"])
    assert (now["status"], now["cancel_reason"]) == ("CANCELLED", "station_inactive")
    await told_cancelled(driver_client, mine["booking_id"], "the station has stopped taking bookings")


async def test_a_dry_run_says_what_would_happen_and_changes_nothing(
    driver_client: ApiClient, operator_client: ApiClient, station: Station
) -> None:
    mine = await paid_booking(driver_client, station, charger_number=2)  # the only TYPE2
    before = await Notification.all().count()
    answer = await take_out_of_service(operator_client, station, 2, "?dry_run=true")
    assert answer["dry_run"] is True
    assert answer["affected_bookings"] == {"moved": 0, "cancelled": 1, "booking_ids": [mine["booking_id"]]}
    assert answer["status"] == "AVAILABLE"
    assert (await Charger.get(station_id=station.id, charger_number=2)).status == ChargerStatus.AVAILABLE
    assert (await booking(driver_client, mine["booking_id"]))["status"] == "PAID"
    assert (await Payment.get(booking_id=mine["booking_id"])).status == PaymentStatus.SUCCESS
    closing = {"kind": "closing", "period_begin": "2026-12-02T06:00:00Z", "period_end": "2026-12-02T08:00:00Z"}
    preview = await operator_client.post(f"/api/stations/{station.id}/exceptions?dry_run=true", json=closing)
    assert (preview.status_code, (await preview.get_json())["id"]) == (200, None)
    assert not await (await Station.get(id=station.id)).exceptional_periods.all()  # type: ignore[attr-defined]
    assert await Notification.all().count() == before, "a dry run tells nobody anything"
    assert [line["event"] for line in (await booking(driver_client, mine["booking_id"]))["history"]] == [
        "created",
        "paid",
    ]


async def test_an_unpaid_hold_is_cancelled_without_a_refund(
    driver_client: ApiClient, operator_client: ApiClient, station: Station
) -> None:
    booked = await driver_client.post(
        "/api/bookings", json={"station_id": station.id, "slot_time": SLOT, "duration_minutes": 60}
    )
    held = await booked.get_json()
    await operator_client.patch(f"/api/stations/{station.id}", json={"status": "INACTIVE"})
    assert (await Booking.get(id=held["booking_id"])).status == BookingStatus.CANCELLED
    assert not await Payment.filter(booking_id=held["booking_id"]).exists()
    latest = await told(driver_client)
    assert latest["kind"] == "booking_cancelled" and "It was not paid, so nothing is owed." in latest["body"]


class FlakyRefunds(SimulatedProvider):
    """Refuses refunds until told the acquirer is back."""

    def __init__(self) -> None:
        self.down = True

    async def refund(self, transaction_id: str, amount: int) -> ProviderResult:
        if self.down:
            raise ConnectionError("acquirer unreachable")
        return await super().refund(transaction_id, amount)


@pytest.fixture
def flaky_refunds(app: Quart) -> Iterator[FlakyRefunds]:
    services = state(app)
    original, services.provider = services.provider, FlakyRefunds()
    assert isinstance(services.provider, FlakyRefunds)
    yield services.provider
    services.provider = original


async def test_a_refund_that_fails_is_owed_and_retried_by_close_out_until_it_goes_through(
    app: Quart, driver_client: ApiClient, operator_client: ApiClient, station: Station, flaky_refunds: FlakyRefunds
) -> None:
    mine = await paid_booking(driver_client, station)
    await operator_client.patch(f"/api/stations/{station.id}", json={"status": "INACTIVE"})
    assert (await booking(driver_client, mine["booking_id"]))["status"] == "CANCELLED"
    assert (await Payment.get(booking_id=mine["booking_id"])).status == PaymentStatus.REFUND_PENDING
    services = state(app)
    now = datetime(2026, 12, 2, 5, 1, tzinfo=UTC)
    assert (await close_out(now, bus=services.bus, provider=services.provider)).refunded == 0
    flaky_refunds.down = False
    assert (await close_out(now, bus=services.bus, provider=services.provider)).refunded == 1
    assert (await Payment.get(booking_id=mine["booking_id"])).status == PaymentStatus.REFUNDED
    assert (await close_out(now, bus=services.bus, provider=services.provider)).refunded == 0


async def held(client: ApiClient, station: Station) -> dict[str, Any]:
    booked = await client.post(
        "/api/bookings", json={"station_id": station.id, "slot_time": SLOT, "duration_minutes": 60}
    )
    assert booked.status_code == 200
    return dict(await booked.get_json())


async def breaks_out_of_hours(station: Station) -> None:
    """New hours written without the operator API, which would have settled the booking."""
    await write_hours(station, daily("08:00", "11:00"))


async def breaks_its_charger(station: Station) -> None:
    await Charger.filter(station_id=station.id).update(status=ChargerStatus.OUT_OF_SERVICE)


@pytest.mark.parametrize(
    ("breaking", "reason"),
    [
        (breaks_out_of_hours, "The slot no longer lies inside the station's opening hours."),
        (breaks_its_charger, "The booked charger is out of service."),
    ],
    ids=["outside-hours", "charger-out-of-service"],
)
async def test_payment_and_quote_recheck_the_whole_promise(
    driver_client: ApiClient, station: Station, breaking: Any, reason: str
) -> None:
    hold = await held(driver_client, station)
    await breaking(station)
    quote = await (await driver_client.get(f"/api/bookings/{hold['booking_id']}/quote")).get_json()
    assert (quote["payable"], quote["reason"]) == (False, reason)
    paid = await driver_client.post(
        "/api/payments/process",
        json={"booking_id": hold["booking_id"], "payment_method": "UPI", "amount": hold["amount_due"]},
    )
    body = await paid.get_json()
    assert (paid.status_code, body["code"]) == (409, "booking_not_payable")
    assert body["detail"].startswith(reason)
    assert not await Payment.filter(booking_id=hold["booking_id"]).exists()


async def test_the_quote_of_a_station_not_taking_bookings_says_so(driver_client: ApiClient, station: Station) -> None:
    hold = await held(driver_client, station)
    await Station.filter(id=station.id).update(status="MAINTENANCE")
    quote = await (await driver_client.get(f"/api/bookings/{hold['booking_id']}/quote")).get_json()
    assert (quote["payable"], quote["reason"]) == (False, "The station is not taking bookings.")
