"""The bell and its toasts in a real Chromium: a notification reaches every open tab of its driver
and never another driver's; the panel lists it and marks it read; My bookings shows what
happened to a booking and offers it for the calendar."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import DRIVER, Api
from tests.helpers import create_station, screenshot, sign_in

pytestmark = pytest.mark.browser

LIVE = 8_000  # ms


async def test_a_notification_reaches_every_tab_of_its_driver_and_nobody_else(
    new_page: Any, playwright_instance: Any, base_url: str, operator_api: Api, anon_api: Api
) -> None:
    station = await create_station(operator_api, "Notice Hub", {"twentyfourseven": True})
    first = await new_page()
    await sign_in(first, DRIVER, "/")
    await expect(first.locator(".account__name")).to_be_visible()
    second = await first.context.new_page()  # a second tab of the same browser
    await second.goto("/bookings")
    someone = {"email": f"other-{secrets.token_hex(4)}@example.com", "password": "another-driver-2026"}
    await anon_api.call(
        "POST", "/api/auth/register", {**someone, "username": f"other{secrets.token_hex(4)}"}, expect=201
    )
    other = await new_page()
    await sign_in(other, someone, "/")
    await expect(other.locator(".account__name")).to_be_visible()
    for page in (first, second, other):
        await expect(page.locator("#bell")).to_have_attribute("data-state", "connected", timeout=LIVE)

    driver = await Api.open(playwright_instance, base_url, DRIVER)
    try:
        slot = (datetime.now(UTC) + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
        body = {"station_id": station["id"], "slot_time": slot.isoformat(), "duration_minutes": 60}
        booking = await driver.call("POST", "/api/bookings", body)
        title = f"Charger 1 held at {station['name']}"
        for page in (first, second):
            await expect(page.locator(".toast").filter(has_text=title)).to_be_visible(timeout=LIVE)
            await expect(page.locator("#bell-count")).to_be_visible()
        await screenshot(second, "notice-toast")
        await expect(other.locator(".toast")).to_have_count(0)
        await expect(other.locator("#bell-count")).to_be_hidden()

        await second.locator("#bell").click()
        entry = second.locator(".notice").filter(has_text=title)
        await expect(entry).to_be_visible()
        unread = int(await second.locator("#bell").get_attribute("data-unread") or "0")
        await entry.get_by_role("button", name=re.compile("Mark read")).click()
        await expect(second.locator("#bell")).to_have_attribute("data-unread", str(unread - 1))
        await screenshot(second, "notice-panel")

        # My bookings, open in that tab since before the booking: it shows up, with what happened
        # to it and a way to put it in the calendar.
        await second.keyboard.press("Escape")
        card = second.locator(f'[data-booking-id="{booking["booking_id"]}"]')
        await expect(card).to_be_visible()
        link = card.get_by_role("link", name=re.compile("Add to calendar"))
        await expect(link).to_have_attribute("href", f"/api/bookings/{booking['booking_id']}/calendar.ics")
        await card.get_by_text("What happened").click()
        await expect(card.locator(".booking-history li").first).to_contain_text("Booked")
        await driver.call("POST", f"/api/bookings/{booking['booking_id']}/cancel")
    finally:
        await driver.close()
