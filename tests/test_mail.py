"""Notification mail, received by a real SMTP server the test starts: plain text and HTML, and the
booking as a calendar entry that a calendar updates when the booking moves and removes when it is
cancelled; a mail server that is down delays mail, never a booking; "Add to calendar"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from quart import Quart

from app import delivery
from app.hours import HoursSpec
from app.models import Charger, Notification, Station, User
from app.state import state
from tests.conftest import ApiClient, Backend
from tests.helpers import MailCatcher, book, calendar_of, mail_to, make_station, ok, pay, problem, signed_in

KOLKATA = ZoneInfo("Asia/Kolkata")
#: 12:00-13:00 at the station, 2 December 2026.
SLOT = "2026-12-02T12:00:00"


@pytest.fixture
def catcher() -> Iterator[MailCatcher]:
    server = MailCatcher()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def station(db: Backend) -> Station:
    return await make_station(
        name="Mumbai Central", timezone="Asia/Kolkata", hours=HoursSpec(twentyfourseven=True), chargers=2
    )


async def send_mail(app: Quart) -> None:
    services = state(app)
    await delivery.deliver_pending(services.clock.now(), bus=services.bus, mail=services.mail)


async def paid(client: ApiClient, station: Station) -> dict[str, Any]:
    booking = await ok(await book(client, station, SLOT))
    await ok(await pay(client, booking, amount=booking["amount_due"]))
    return dict(booking)


def event_of(calendar: Calendar) -> Any:
    (event,) = calendar.walk("VEVENT")
    return event


async def test_the_driver_gets_a_receipt_with_the_booking_for_the_calendar_and_its_updates(
    app: Quart,
    catcher: MailCatcher,
    driver_client: ApiClient,
    operator_client: ApiClient,
    driver: User,
    station: Station,
) -> None:
    with mail_to(app, catcher.url):
        booking = await paid(driver_client, station)
        await send_mail(app)
        (receipt,) = catcher.received  # holding a slot is not mailed; paying for it is
        assert receipt["To"] == driver.email and receipt["From"] == "Chargeslot <bookings@charge.example>"
        assert receipt["Subject"] == "Paid 150.00 INR: Mumbai Central"
        text = receipt.get_body(("plain",)).get_content()
        html = receipt.get_body(("html",)).get_content()
        assert "Wed 2 Dec, 12:00-13:00 (Asia/Kolkata)" in text and "<h1" in html
        calendar = calendar_of(receipt)
        assert calendar["METHOD"] == "REQUEST"
        event = event_of(calendar)
        start, end = event.decoded("DTSTART"), event.decoded("DTEND")
        assert str(start.tzinfo) == "Asia/Kolkata" and (start.hour, start.minute) == (12, 0)
        assert start.astimezone(UTC) == datetime(2026, 12, 2, 6, 30, tzinfo=UTC)
        assert end - start == timedelta(hours=1)
        assert calendar.walk("VTIMEZONE")[0]["TZID"] == "Asia/Kolkata"
        uid = str(event["UID"])
        assert uid.startswith(f"booking-{booking['booking_id']}@") and event["SEQUENCE"] == 0

        # The charger goes out of service: the booking moves, and the calendar entry with it.
        charger = await Charger.get(station_id=station.id, charger_number=1)
        await ok(
            await operator_client.patch(
                f"/api/stations/{station.id}/chargers/{charger.id}", json={"status": "OUT_OF_SERVICE"}
            )
        )
        await send_mail(app)
        moved = catcher.received[-1]
        assert moved["Subject"] == "Your booking moved to charger 2"
        update = event_of(calendar_of(moved))
        assert (str(update["UID"]), update["SEQUENCE"], str(update["STATUS"])) == (uid, 1, "CONFIRMED")
        assert "charger 2" in str(update["SUMMARY"])

        # Cancelled: the calendar removes it.
        await ok(await driver_client.post(f"/api/bookings/{booking['booking_id']}/cancel"))
        await send_mail(app)
        cancelled = catcher.received[-1]
        calendar = calendar_of(cancelled)
        gone = event_of(calendar)
        assert calendar["METHOD"] == "CANCEL"
        assert (str(gone["UID"]), gone["SEQUENCE"], str(gone["STATUS"])) == (uid, 2, "CANCELLED")
        await send_mail(app)
        assert len(catcher.received) == 3, "each mail sent once"


async def test_a_mail_server_that_is_down_delays_mail_and_never_a_booking(
    app: Quart, driver_client: ApiClient, station: Station, clock: Any
) -> None:
    down = MailCatcher()  # not started yet: nothing listens on its port
    with mail_to(app, down.url):
        ready = await (await driver_client.get("/readyz")).get_json()
        assert ready["checks"]["mail"] == "failing"
        booking = await paid(driver_client, station)  # booking and paying do not wait for mail
        await send_mail(app)
        receipt = await Notification.get(booking_id=booking["booking_id"], kind="payment_receipt")
        assert (receipt.mail_sent_at, receipt.mail_attempts) == (None, 1)
        assert receipt.mail_next_at == clock.now() + timedelta(seconds=30)
        down.start()
        try:
            await send_mail(app)
            assert down.received == [], "not before its retry is due"
            clock.advance(timedelta(seconds=30))
            await send_mail(app)
            assert [m["Subject"] for m in down.received] == ["Paid 150.00 INR: Mumbai Central"]
            assert (await Notification.get(id=receipt.id)).mail_sent_at == clock.now()
        finally:
            down.stop()


async def test_without_smtp_url_mail_is_disabled_and_readyz_says_so(client: ApiClient) -> None:
    ready = await (await client.get("/readyz")).get_json()
    assert ready["checks"]["mail"] == "disabled"


async def test_add_to_calendar_gives_the_drivers_own_booking_in_the_stations_zone(
    driver_client: ApiClient, other_client: ApiClient, station: Station, make_user: Any
) -> None:
    booking = await ok(await book(driver_client, station, SLOT))
    response = await driver_client.get(f"/api/bookings/{booking['booking_id']}/calendar.ics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/calendar")
    calendar = Calendar.from_ical(await response.get_data())
    event = event_of(calendar)
    assert event.decoded("DTSTART") == datetime(2026, 12, 2, 12, 0, tzinfo=KOLKATA)
    assert event.decoded("DTEND") == datetime(2026, 12, 2, 13, 0, tzinfo=KOLKATA)
    assert str(event["UID"]).startswith(f"booking-{booking['booking_id']}@")
    stranger = await signed_in(other_client, await make_user())
    await problem(await stranger.get(f"/api/bookings/{booking['booking_id']}/calendar.ics"), 404, "not_found")
