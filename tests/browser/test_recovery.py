"""A page whose data fails to load says so, stops spinning, offers Retry, and recovers with it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.async_api import expect

from tests.helpers import screenshot

pytestmark = pytest.mark.browser

UNAVAILABLE = json.dumps(
    {
        "type": "about:blank",
        "title": "Service Unavailable",
        "status": 503,
        "code": "unavailable",
        "detail": "Try again.",
    }
)


class Outage:
    """Requests matching ``pattern`` answer 503 while the outage lasts; the rest pass through."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern)
        self.on = True

    async def open(self, page: Any, path: str, state_box: str, message: str) -> Any:
        """Open ``path`` during the outage; return its state box, checked to say ``message`` with no
        spinner left running."""

        async def handle(route: Any) -> None:
            if self.on and route.request.method == "GET":
                await route.fulfill(status=503, body=UNAVAILABLE, content_type="application/problem+json")
            else:
                await route.fallback()

        await page.route(self.pattern, handle)
        await page.goto(path)
        state = page.locator(state_box)
        await expect(state.get_by_role("alert")).to_contain_text(message)
        await expect(page.locator(".spinner")).to_have_count(0)
        return state


async def assert_summary_matches_the_list(page: Any) -> None:
    cards = page.locator("li.station-card")
    shown = await cards.count()
    open_now = await cards.locator(".badge[data-open=true]").count()
    text = await page.locator("#result-count").inner_text()
    expected = f"{shown} station{'' if shown == 1 else 's'} · {open_now} open now" if shown else ""
    assert text == expected, f"summary {text!r} but the list shows {shown} stations, {open_now} open"


async def test_home_list_failure_offers_retry_that_recovers(new_page: Any) -> None:
    page = await new_page(1440, 900)
    outage = Outage(r"/api/stations(\?|$)")
    state = await outage.open(page, "/", "#stations-state", "Couldn't load stations")
    retry = state.get_by_role("button", name="Retry")
    await expect(retry).to_be_visible()
    await assert_summary_matches_the_list(page)
    await screenshot(page, "home-load-failed", full_page=False)

    await retry.focus()
    await page.keyboard.press("Enter")  # still failing: a new Retry, and the keyboard stays on it
    await expect(retry).to_be_focused()

    outage.on = False
    await retry.click()
    await expect(page.locator("li.station-card").first).to_be_visible()
    await expect(state).to_be_hidden()
    await expect(page.locator("#station-list")).to_be_focused()
    await assert_summary_matches_the_list(page)


async def test_station_page_failure_offers_retry_that_recovers(new_page: Any) -> None:
    page = await new_page(390, 844)
    outage = Outage(r"/api/stations/1$")
    state = await outage.open(page, "/stations/1", "#page-state", "Couldn't load this station")
    await expect(page.locator("#station-badge")).to_have_text("Unknown")
    await expect(page.locator("#conn")).to_be_hidden()
    await screenshot(page, "station-load-failed", full_page=False)

    outage.on = False
    await state.get_by_role("button", name="Retry").click()
    await expect(state).to_be_hidden()
    await expect(page.locator("#station-badge")).to_have_text(re.compile("^(Open|Closed)$"))
    await expect(page.locator("#charger-grid li.charger").first).to_be_visible()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
    await expect(page.get_by_role("heading", level=1)).to_be_focused()
