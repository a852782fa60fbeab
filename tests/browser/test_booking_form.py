"""Booking, paying and cancelling as a driver meets them: the form says in words why a slot cannot
be booked and what it costs, the hold counts down, the vehicle follows the booking everywhere,
and cancelling is offered only when allowed, after saying what happens to the money."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import Api
from tests.helpers import close_now, create_station, eventually, screenshot, sign_in

pytestmark = pytest.mark.browser

ALWAYS = {"twentyfourseven": True}


async def station_and_driver(
    operator_api: Api, make_driver: Callable[[str], dict[str, str]], name: str, timezone: str = "UTC"
) -> tuple[dict[str, Any], dict[str, str]]:
    """A station open around the clock and a new driver's credentials, both of the test's own."""
    station = await create_station(operator_api, name, ALWAYS, timezone=timezone)
    return station, make_driver("form")


@pytest.mark.parametrize("size", [(1280, 900), (390, 844)], ids=["desktop", "phone"])
async def test_book_button_waits_for_a_valid_slot_and_the_total_is_shown_first(
    new_page: Any, operator_api: Api, make_driver: Any, size: tuple[int, int]
) -> None:
    station, user = await station_and_driver(operator_api, make_driver, "Form Check Yard")
    page = await new_page(*size)
    await sign_in(page, user, f"/stations/{station['id']}")
    book = page.get_by_role("button", name="Book this slot")
    check = page.locator("#slot-check")
    await expect(check).to_contain_text("free for this slot")
    await expect(book).to_be_enabled()
    await expect(page.locator("#slot-price")).to_have_text("Total ₹200.00 for 1 hour")

    far = (datetime.now(UTC) + timedelta(days=10)).strftime("%Y-%m-%d")
    await page.get_by_label("Date").fill(far)
    await expect(check).to_have_text("Slots can be booked at most 7 days ahead.")
    await expect(book).to_be_disabled()
    await expect(check).not_to_contain_text("slot_time")
    await screenshot(page, f"booking-invalid-{size[0]}", full_page=False)

    await page.get_by_label("Date").fill(datetime.now(UTC).strftime("%Y-%m-%d"))
    await page.get_by_label("Duration").select_option("90")
    await expect(book).to_be_enabled()
    await expect(page.locator("#slot-price")).to_have_text("Total ₹300.00 for 1 h 30 min")


async def test_start_times_are_on_a_24_hour_clock_whatever_the_browsers_locale(
    browser: Any, base_url: str, operator_api: Api, make_driver: Any
) -> None:
    station, user = await station_and_driver(operator_api, make_driver, "Clock Face Depot")
    context = await browser.new_context(base_url=base_url, locale="en-US", viewport={"width": 1280, "height": 900})
    try:
        page = await context.new_page()
        await sign_in(page, user, f"/stations/{station['id']}")
        start = page.get_by_role("combobox", name="Start time")
        await expect(start).to_be_visible()
        labels = await start.locator("option").all_inner_texts()
        assert len(labels) == 96 and labels[52] == "13:00", labels[50:54]
        assert all(re.fullmatch(r"[0-2]\d:[0-5]\d", label) for label in labels), "a 12-hour clock crept in"
    finally:
        await context.close()


async def test_vehicle_placeholder_and_zone_name_fit_the_station(
    new_page: Any, operator_api: Api, make_driver: Any
) -> None:
    new_york, user = await station_and_driver(operator_api, make_driver, "Hudson Yards Charge", "America/New_York")
    page = await new_page(timezone="Asia/Kolkata")  # the browser's zone must not matter
    await sign_in(page, user, f"/stations/{new_york['id']}")
    vehicle = page.get_by_label("Vehicle number (optional)")
    await expect(vehicle).to_be_visible()
    placeholder = await vehicle.get_attribute("placeholder")
    assert placeholder and "MH" not in placeholder, f"an Indian plate for New York: {placeholder}"
    names = {await n.inner_text() for n in await page.locator(".js-zone-name").all()}
    assert names == {"Eastern Time", "Eastern Time (America/New_York)"}, names

    await page.goto(f"/kiosk/{new_york['id']}")
    await expect(page.locator(".kiosk__zone")).to_have_text("Eastern Time")
    await page.goto("/")
    card = page.locator("li.station-card").filter(has=page.get_by_role("link", name=new_york["name"], exact=True))
    await expect(card.locator(".js-zone")).to_have_text("Eastern Time")


async def test_book_now_on_a_phone_lands_with_the_booking_form_in_view(
    new_page: Any, operator_api: Api, make_driver: Any
) -> None:
    station, user = await station_and_driver(operator_api, make_driver, "Phone Landing Hub")
    page = await new_page(390, 844)
    await sign_in(page, user, f"/?q={station['name']}")
    await page.get_by_role("link", name=f"Book now at {station['name']}").click()
    await page.wait_for_url(f"**/stations/{station['id']}#booking")
    await expect(page.locator("#booking-form")).to_be_visible()
    await expect(page.get_by_role("heading", name="Book a charging slot")).to_be_in_viewport()
    await expect(page.get_by_label("Date")).to_be_in_viewport()
    await screenshot(page, "book-now-phone", full_page=False)


async def test_the_hold_counts_down_and_the_vehicle_follows_the_booking_to_receipt_and_my_bookings(
    new_page: Any, operator_api: Api, make_driver: Any
) -> None:
    station, user = await station_and_driver(operator_api, make_driver, "Vehicle Trail")
    page = await new_page(390, 844)
    await sign_in(page, user, f"/stations/{station['id']}")
    await page.get_by_label("Vehicle number (optional)").fill("KA 05 MN 4321")
    await expect(page.locator("#slot-check")).to_contain_text("free for this slot")
    await page.get_by_role("button", name="Book this slot").click()

    summary = page.locator("#booking-summary")
    await expect(summary).to_contain_text("VehicleKA 05 MN 4321")
    countdown = page.locator("#hold-countdown")
    await expect(countdown).to_have_text(
        re.compile(r"^Charger held for you for \d+ min \d\d s more, until \d\d:\d\d\.$")
    )
    first = await countdown.inner_text()
    await expect(countdown).not_to_have_text(first, timeout=3_000)  # it ticks
    await expect(page.locator("#cancel-policy")).to_contain_text("Cancelling is free until your slot starts")
    await expect(page.locator("#cancel-policy")).to_contain_text("full ₹200.00 back")
    await screenshot(page, "payment-hold-countdown", full_page=False)

    await page.get_by_role("button", name="Complete payment").click()
    await expect(page.locator("#confirmation-summary")).to_contain_text("VehicleKA 05 MN 4321")
    await page.get_by_role("link", name="View my bookings").click()
    card = page.locator(".booking-card").first
    await expect(card.locator(".js-vehicle")).to_have_text("KA 05 MN 4321")
    await expect(card.locator(".js-receipt")).to_contain_text("KA 05 MN 4321")


async def test_cancelling_asks_first_states_the_refund_and_is_not_offered_once_a_paid_slot_started(
    new_page: Any, operator_api: Api, make_driver: Any, playwright_instance: Any, base_url: str
) -> None:
    station = await create_station(operator_api, "Cancel Rules Yard", ALWAYS, timezone="UTC")
    user = make_driver("form")
    api = await Api.open(playwright_instance, base_url, user)
    later = (datetime.now(UTC) + timedelta(hours=3)).replace(second=0, microsecond=0)
    future = await api.call(
        "POST", "/api/bookings", {"station_id": station["id"], "slot_time": later.isoformat(), "duration_minutes": 60}
    )
    soon = datetime.now(UTC) + timedelta(seconds=3)
    started = await api.call(
        "POST", "/api/bookings", {"station_id": station["id"], "slot_time": soon.isoformat(), "duration_minutes": 30}
    )
    for booking in (future, started):
        pay = {"booking_id": booking["booking_id"], "payment_method": "CARD", "amount": booking["amount_due"]}
        await api.call("POST", "/api/payments/process", pay)

    async def has_started() -> bool:  # a few seconds from now, by the server's clock
        return not (await api.call("GET", f"/api/bookings/{started['booking_id']}"))["cancellable"]

    await eventually(has_started, timeout=15, what="the paid slot starting")
    await api.close()

    page = await new_page(390, 844)
    await sign_in(page, user, "/bookings")
    running = page.locator(f'[data-booking-id="{started["booking_id"]}"]')
    await expect(running.locator(".status-pill")).to_have_text("Paid")
    await expect(running.get_by_role("button", name=re.compile("^Cancel booking"))).to_have_count(0)

    upcoming = page.locator(f'[data-booking-id="{future["booking_id"]}"]')
    await upcoming.get_by_role("button", name=re.compile("^Cancel booking")).click()
    question = upcoming.locator(".js-confirm-text")
    await expect(question).to_be_focused()
    await expect(question).to_contain_text("You get a full refund of ₹200.00 to your Card.")
    await screenshot(page, "cancel-confirm-phone", full_page=False)
    await upcoming.get_by_role("button", name="Keep booking").click()
    await expect(upcoming.locator(".status-pill")).to_have_text("Paid")
    await expect(question).to_be_hidden()

    await upcoming.get_by_role("button", name=re.compile("^Cancel booking")).click()
    await upcoming.get_by_role("button", name="Yes, cancel booking").click()
    await expect(page.locator(f'[data-booking-id="{future["booking_id"]}"] .status-pill')).to_have_text("Cancelled")


async def test_payment_paused_says_when_the_hold_runs_out_and_no_more(
    new_page: Any, operator_api: Api, make_driver: Any
) -> None:
    station, user = await station_and_driver(operator_api, make_driver, "Paused Pay Point")
    page = await new_page()
    await sign_in(page, user, f"/stations/{station['id']}")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
    # A slot three hours ahead (station time is UTC), so the closing below does not touch it.
    later = datetime.now(UTC) + timedelta(hours=3)
    await page.get_by_label("Date").fill(f"{later:%Y-%m-%d}")
    await page.get_by_label("Start time").select_option(f"{later:%H}:00")
    await expect(page.locator("#slot-check")).to_contain_text("free for this slot")
    await page.get_by_role("button", name="Book this slot").click()
    await expect(page.locator("#payment")).to_be_visible()
    held_until = re.search(r"until (\d\d:\d\d)", await page.locator("#hold-countdown").inner_text())
    assert held_until is not None

    await close_now(operator_api, station["id"], hours=1)  # over before the slot starts
    paused = page.locator("#payment-paused")
    await expect(paused).to_be_visible(timeout=8_000)
    await expect(paused).to_contain_text(f"stays held until {held_until[1]}")
    await expect(paused).to_contain_text("the hold runs out and the slot is released")
    await expect(paused).not_to_contain_text("pay once it opens again")
    await screenshot(page, "payment-paused", full_page=False)


async def test_cancelling_an_unpaid_hold_on_the_station_page_asks_first(
    new_page: Any, operator_api: Api, make_driver: Any
) -> None:
    station, user = await station_and_driver(operator_api, make_driver, "Second Thoughts Plaza")
    page = await new_page(390, 844)
    await sign_in(page, user, f"/stations/{station['id']}")
    await expect(page.locator("#slot-check")).to_contain_text("free for this slot")
    await page.get_by_role("button", name="Book this slot").click()
    await page.get_by_role("button", name="Cancel booking").click()
    question = page.locator("#cancel-confirm-text")
    await expect(question).to_be_focused()
    await expect(question).to_contain_text("nothing is charged and there is nothing to refund")
    await page.get_by_role("button", name="Keep booking").click()
    await expect(question).to_be_hidden()
    await expect(page.get_by_role("button", name="Complete payment")).to_be_visible()

    await page.get_by_role("button", name="Cancel booking").click()
    await page.get_by_role("button", name="Yes, cancel booking").click()
    await expect(page.get_by_role("button", name="Book this slot")).to_be_visible()
    await expect(page.locator("#announcer")).to_contain_text("Booking cancelled.")
