"""What the pages say is true, and what they offer can be reached on a phone."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import OPERATOR, Api
from tests.helpers import create_station, screenshot, sign_in

pytestmark = pytest.mark.browser


async def test_phone_header_offers_register(new_page: Any) -> None:
    page = await new_page(375, 812)
    await page.goto("/")
    register = page.get_by_role("link", name="Register")
    await expect(register).to_be_in_viewport()
    await expect(page.get_by_role("link", name="Sign in")).to_be_in_viewport()
    overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"page is {overflow}px wider than the phone screen"
    await screenshot(page, "header-375", full_page=False)
    await register.click()
    await page.wait_for_url("**/register**")


async def test_home_says_how_the_list_is_ordered_when_location_is_refused(new_page: Any) -> None:
    page = await new_page(390, 844)
    await page.goto("/")
    count = page.locator("#result-count")
    await expect(count).to_have_text(re.compile(r"^\d+ stations · \d+ open now$"))
    before = await count.inner_text()
    await page.get_by_role("button", name="Near me").click()
    await expect(page.get_by_role("status").filter(has_text="not sorted by distance")).to_be_visible()
    await expect(page.get_by_text("listed by name")).to_have_count(0)
    await expect(count).to_have_text(before)
    await screenshot(page, "home-location-refused", full_page=False)


async def test_hold_limit_error_links_to_my_bookings(new_page: Any, playwright_instance: Any, base_url: str) -> None:
    operator = await Api.open(playwright_instance, base_url, OPERATOR)
    station = await create_station(operator, "Hold Yard", {"twentyfourseven": True}, timezone="UTC")
    await operator.close()
    user = {"email": f"holds-{secrets.token_hex(4)}@example.com", "password": "keep-three-holds-9"}
    driver = await Api.open(playwright_instance, base_url)
    await driver.call("POST", "/api/auth/register", {**user, "username": f"h{secrets.token_hex(4)}"}, expect=201)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    for hour in range(3):
        slot = (start + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%S")
        await driver.call(
            "POST", "/api/bookings", {"station_id": station["id"], "slot_time": slot, "duration_minutes": 30}
        )
    await driver.close()

    page = await new_page(1440, 900)
    await sign_in(page, user, f"/stations/{station['id']}")
    await page.get_by_role("button", name="Book this slot").click()
    error = page.locator("#booking-error")
    await expect(error).to_contain_text("maximum number of unpaid bookings")
    await expect(error).to_be_focused()
    await screenshot(page, "hold-limit", full_page=False)
    await error.get_by_role("link", name=re.compile("^Pay for or cancel one in My bookings")).click()
    await page.wait_for_url("**/bookings")
    await expect(page.locator(".booking-card")).to_have_count(3)
