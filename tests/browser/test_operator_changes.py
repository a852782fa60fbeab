"""An operator's changes in a real Chromium: told what a change does to bookings before it is made
(DESIGN §13), told which field is wrong and why, asked before a role change, and all of it on a
390 px phone as on a desktop."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import OPERATOR, Api
from tests.helpers import create_station, eventually, screenshot, sign_in

pytestmark = pytest.mark.browser

PHONE = (390, 844)
DESKTOP = (1280, 900)


async def page_width(page: Any) -> int:
    width: int = await page.evaluate("document.documentElement.scrollWidth")
    return width


def next_quarter(after: timedelta) -> datetime:
    at = datetime.now(UTC).replace(second=0, microsecond=0) + after
    return at + timedelta(minutes=-at.minute % 15)


async def new_driver(playwright: Any, base_url: str) -> Api:
    """A driver of the test's own, signed in (the demo driver's unpaid holds belong to other tests)."""
    api = await Api.open(playwright, base_url)
    tag = secrets.token_hex(4)
    user = {"email": f"moved-{tag}@example.com", "username": f"moved{tag}", "password": "plug-in-and-go-2026"}
    await api.call("POST", "/api/auth/register", user, expect=201)
    return api


async def open_console(page: Any, station: dict[str, Any]) -> None:
    """The operator's page of ``station``, with the station loaded into it (its forms work then)."""
    await sign_in(page, OPERATOR, f"/operator/stations/{station['id']}")
    await expect(page.locator("#op-chargers tbody tr[data-charger-id]").first).to_be_visible()


def service_button(page: Any, charger: dict[str, Any]) -> Any:
    return page.locator(f"#op-chargers tr[data-charger-id='{charger['id']}']").get_by_role("button")


async def paid_booking(api: Api, station_id: int, charger_id: int, start: datetime) -> int:
    body = {
        "station_id": station_id,
        "charger_id": charger_id,
        "slot_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_minutes": 30,
    }
    booking = await api.call("POST", "/api/bookings", body)
    payment = {"booking_id": booking["booking_id"], "payment_method": "UPI", "amount": booking["amount_due"]}
    await api.call("POST", "/api/payments/process", payment)
    booking_id: int = booking["booking_id"]
    return booking_id


@pytest.mark.parametrize("size", [PHONE, DESKTOP], ids=["phone", "desktop"])
async def test_taking_a_charger_out_warns_what_happens_to_its_bookings_and_waits_for_confirm(
    new_page: Any, operator_api: Api, playwright_instance: Any, base_url: str, size: tuple[int, int]
) -> None:
    """Charger 1 holds two paid bookings: at the first slot charger 3 (same connector) is free, so
    that one moves; at the second charger 3 is booked too, so that one is cancelled and refunded."""
    station = await create_station(operator_api, "Warned Yard", {"twentyfourseven": True}, timezone="UTC")
    third = await operator_api.call(
        "POST", f"/api/stations/{station['id']}/chargers", {"charger_type": "CCS2", "power_kw": 60}, expect=201
    )
    first = next(c for c in station["chargers"] if c["charger_number"] == 1)
    early, late = next_quarter(timedelta(hours=2)), next_quarter(timedelta(hours=4))
    driver, other = await new_driver(playwright_instance, base_url), await new_driver(playwright_instance, base_url)
    try:
        movable = await paid_booking(driver, station["id"], first["id"], early)
        stuck = await paid_booking(driver, station["id"], first["id"], late)
        await paid_booking(other, station["id"], third["id"], late)  # charger 3 is taken at the second slot

        page = await new_page(*size)
        await open_console(page, station)
        take_out = service_button(page, first)
        await take_out.click()
        question = page.locator("[data-confirm] .confirm__question")
        await expect(question).to_have_text("This affects 2 bookings: 1 will be moved, 1 cancelled and refunded.")
        await expect(question).to_be_focused()
        assert await page_width(page) <= size[0]
        await screenshot(page, f"operator-charger-warning-{size[0]}")

        await page.get_by_role("button", name="Cancel").click()
        await expect(question).to_have_count(0)
        unchanged = await operator_api.call("GET", f"/api/stations/{station['id']}")
        assert [c["status"] for c in unchanged["chargers"]] == ["AVAILABLE"] * 3, "Cancel changed nothing"
        for booking_id in (movable, stuck):
            booking = await driver.call("GET", f"/api/bookings/{booking_id}")
            assert (booking["status"], booking["charger_id"]) == ("PAID", first["id"])

        await take_out.click()
        await page.get_by_role("button", name="Confirm change").click()
        await expect(page.locator("#ch-saved")).to_contain_text(
            "Charger 1 is out of service. 1 booking moved to another charger, 1 booking cancelled and refunded"
        )
        await expect(service_button(page, first)).to_have_text("Return to service")
        moved = await driver.call("GET", f"/api/bookings/{movable}")
        assert (moved["status"], moved["charger_id"]) == ("PAID", third["id"])
        cancelled = await driver.call("GET", f"/api/bookings/{stuck}")
        assert cancelled["status"] == "CANCELLED"
    finally:
        await driver.close()
        await other.close()


async def test_a_change_that_touches_no_booking_is_made_without_a_question(new_page: Any, operator_api: Api) -> None:
    station = await create_station(operator_api, "Quiet Yard", {"twentyfourseven": True}, timezone="UTC")
    page = await new_page(*DESKTOP)
    await open_console(page, station)
    second = next(c for c in station["chargers"] if c["charger_number"] == 2)
    await service_button(page, second).click()
    await expect(page.locator("#ch-saved")).to_have_text("Charger 2 is out of service.")
    await expect(page.locator("[data-confirm]")).to_have_count(0)


@pytest.mark.parametrize("size", [PHONE, DESKTOP], ids=["phone", "desktop"])
async def test_operator_errors_name_the_field_next_to_it(
    new_page: Any, operator_api: Api, size: tuple[int, int]
) -> None:
    station = await create_station(operator_api, "Typo Yard", {"twentyfourseven": True}, timezone="UTC")
    page = await new_page(*size)
    await open_console(page, station)
    zone = page.get_by_label("Time zone")
    await expect(zone).to_have_value("UTC")  # the station has loaded into the form
    await zone.fill("Mars/Olympus_Mons")
    await page.get_by_role("button", name="Save details").click()
    zone_error = page.locator("#st-tz-error")
    await expect(zone_error).to_have_text(re.compile("IANA time zone"))
    await expect(zone).to_have_attribute("aria-invalid", "true")
    await expect(zone).to_be_focused()
    await expect(page.locator("#op-error")).to_contain_text("timezone:")
    await expect(page.locator("#op-error")).not_to_contain_text("The request is not valid")
    assert (await operator_api.call("GET", f"/api/stations/{station['id']}"))["timezone"] == "UTC"

    await page.get_by_label("From").fill("2027-01-10T10:00")
    await page.get_by_label("Until").fill("2027-01-10T09:00")
    await page.get_by_role("button", name="Add", exact=True).click()
    await expect(page.locator("#exc-end-error")).to_have_text("must be after period_begin")
    await expect(page.get_by_label("Until")).to_have_attribute("aria-invalid", "true")
    assert await page_width(page) <= size[0]
    await screenshot(page, f"operator-field-errors-{size[0]}")

    await zone.fill("Asia/Tokyo")
    await page.get_by_role("button", name="Save details").click()
    await expect(page.locator("#station-saved")).to_have_text("Details saved.")
    await expect(zone_error).to_have_count(0)
    await expect(zone).not_to_have_attribute("aria-invalid", "true")


async def test_an_admin_confirms_a_role_change_and_cancel_keeps_the_role(
    new_page: Any, admin: dict[str, str], anon_api: Api
) -> None:
    email = f"promoted-{secrets.token_hex(4)}@example.com"
    user = {"email": email, "username": f"promoted{secrets.token_hex(3)}", "password": "plug-in-and-go-2026"}
    await anon_api.call("POST", "/api/auth/register", user, expect=201)
    page = await new_page(*PHONE)
    await sign_in(page, admin, "/operator/users")
    await page.get_by_label("Email or username").fill(email)
    await expect(page.locator("#us-count")).to_have_text("1\u20131 of 1 account")  # the filtered list is in
    role = page.get_by_label(f"Role of {email}")
    await expect(role).to_have_value("driver")

    await role.select_option("operator")
    question = page.locator("[data-confirm] .confirm__question")
    await expect(question).to_contain_text(f"Make {email} operator instead of driver?")
    assert await page_width(page) <= PHONE[0]
    await screenshot(page, "operator-role-confirm-390")
    await page.get_by_role("button", name="Keep as is").click()
    await expect(role).to_have_value("driver")
    assert await role_of(page, email) == "driver"

    await role.select_option("operator")
    await page.get_by_role("button", name="Make operator").click()
    await expect(question).to_have_count(0)
    await expect(role).to_be_enabled()
    await eventually(lambda: has_role(page, email, "operator"), what="the role change")


async def role_of(page: Any, email: str) -> str:
    listed = await page.request.get(f"/api/users?q={email}")
    roles = [u["role"] for u in (await listed.json())["items"]]
    return roles[0] if roles else ""


async def has_role(page: Any, email: str, role: str) -> bool:
    return await role_of(page, email) == role


# -- one paid booking, cancelled by each kind of change only once the operator confirms ---------------


async def close_around_the_slot(page: Any, start: datetime) -> None:
    await page.get_by_label("From").fill((start - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_label("Until").fill((start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_role("button", name="Add", exact=True).click()


async def retire(page: Any, start: datetime) -> None:
    await page.get_by_label("Status").select_option("INACTIVE")
    await page.get_by_role("button", name="Save details").click()


async def never_open(page: Any, start: datetime) -> None:
    await page.get_by_label("Open 24/7").uncheck()  # and no weekly periods: open only by exception
    await page.get_by_role("button", name="Save hours").click()


async def remove_the_opening(page: Any, start: datetime) -> None:
    await page.locator("#exc-list li[data-kind=opening]").get_by_role("button").click()


def pop_up_opening() -> dict[str, Any]:
    """No weekly hours, only an exceptional opening from an hour ago for six hours."""
    now = datetime.now(UTC)
    opening = {
        "period_begin": (now - timedelta(hours=1)).isoformat(),
        "period_end": (now + timedelta(hours=6)).isoformat(),
    }
    return {"twentyfourseven": False, "regular_hours": [], "exceptional_openings": [opening]}


def schedule(station: dict[str, Any]) -> dict[str, Any]:
    """What decides whether a booked slot can still happen: status, hours and exceptions."""
    return {key: station[key] for key in ("status", "hours", "exceptions")}


async def schedule_of(api: Api, station: dict[str, Any]) -> dict[str, Any]:
    return schedule(await api.call("GET", f"/api/stations/{station['id']}"))


CHANGES = {
    "exceptional closing": (close_around_the_slot, "#exc-saved", "Added."),
    "station set inactive": (retire, "#station-saved", "Details saved."),
    "hours edit": (never_open, "#hours-saved", "Hours saved. Drivers and kiosks see the change now."),
    "opening removed": (remove_the_opening, "#exc-saved", "Removed."),
}


@pytest.mark.parametrize("change", list(CHANGES))
async def test_a_change_that_cancels_a_booking_waits_for_confirm_and_then_says_what_it_did(
    new_page: Any, operator_api: Api, playwright_instance: Any, base_url: str, change: str
) -> None:
    make, saved, said = CHANGES[change]
    hours = pop_up_opening() if change == "opening removed" else {"twentyfourseven": True}
    station = await create_station(operator_api, "Booked Yard", hours, timezone="UTC")
    first = next(c for c in station["chargers"] if c["charger_number"] == 1)
    start = next_quarter(timedelta(hours=2))
    driver = await new_driver(playwright_instance, base_url)
    try:
        booking_id = await paid_booking(driver, station["id"], first["id"], start)
        before = await operator_api.call("GET", f"/api/stations/{station['id']}")
        page = await new_page(*PHONE)
        await open_console(page, station)
        await make(page, start)
        question = page.locator("[data-confirm] .confirm__question")
        await expect(question).to_have_text("This affects 1 booking: 0 will be moved, 1 cancelled and refunded.")
        assert await page_width(page) <= PHONE[0]
        await page.get_by_role("button", name="Cancel").click()
        assert await schedule_of(operator_api, station) == schedule(before), "Cancel changed nothing"
        assert (await driver.call("GET", f"/api/bookings/{booking_id}"))["status"] == "PAID"

        await make(page, start)
        await page.get_by_role("button", name="Confirm change").click()
        await expect(page.locator(saved)).to_contain_text(f"{said} 1 booking cancelled and refunded")
        assert await schedule_of(operator_api, station) != schedule(before)
        assert (await driver.call("GET", f"/api/bookings/{booking_id}"))["status"] == "CANCELLED"
    finally:
        await driver.close()
