"""What a person sees at an address that names nothing: a page saying so, never raw JSON."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from tests.helpers import screenshot

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("path", ["/stations/abc", "/stations/999999", "/nope"])
async def test_unknown_page_shows_the_not_found_page(new_page: Any, path: str) -> None:
    page = await new_page(390, 844)
    response = await page.goto(path)
    assert response.status == 404
    await expect(page.get_by_role("heading", name="We couldn't find that page")).to_be_visible()
    await page.get_by_role("link", name="See all stations").click()
    await page.wait_for_url("**/")
    if path == "/stations/abc":
        await page.go_back()
        await screenshot(page, "not-found-phone")


async def test_unknown_kiosk_shows_an_unknown_station_board(new_page: Any) -> None:
    page = await new_page(1920, 1080)
    response = await page.goto("/kiosk/0")
    assert response.status == 404
    await expect(page.get_by_role("heading", name="Unknown station")).to_be_visible()
    await expect(page.locator(".site-header")).to_have_count(0)
    await screenshot(page, "kiosk-unknown", full_page=False)
