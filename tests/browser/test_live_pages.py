"""What the home card, the station page and the kiosk show the moment an operator changes a
station: a new charger drawn whole, and a station out of service in one state everywhere."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect

from tests.browser.conftest import Api
from tests.helpers import create_station, screenshot

pytestmark = pytest.mark.browser

LIVE = 5_000  # ms: the live channel delivers within tens of milliseconds; this is slack for CI
DASH = "\u2013"  # the en dash of f"09:00 {DASH} 21:00", and what a count shows when there is none


def home_card(page: Any, name: str) -> Any:
    return page.locator("li.station-card").filter(has=page.get_by_role("link", name=name, exact=True))


async def open_all_three(new_page: Any, station: dict[str, Any], width: int, height: int) -> tuple[Any, Any, Any]:
    home = await new_page(width, height)
    await home.goto(f"/?q={station['name']}")
    await expect(home.locator("#conn")).to_have_attribute("data-state", "connected")
    driver = await new_page(width, height)
    await driver.goto(f"/stations/{station['id']}")
    await expect(driver.locator("#conn")).to_have_attribute("data-state", "connected")
    kiosk = await new_page(1920, 1080)
    await kiosk.goto(f"/kiosk/{station['id']}")
    await expect(kiosk.locator("#conn")).to_have_attribute("data-state", "connected")
    return home, driver, kiosk


@pytest.mark.parametrize("size", [(1280, 900), (390, 844)], ids=["desktop", "phone"])
async def test_a_new_charger_appears_complete_everywhere_at_once(
    new_page: Any, operator_api: Api, size: tuple[int, int]
) -> None:
    station = await create_station(operator_api, "New Charger Plaza", {"twentyfourseven": True}, timezone="UTC")
    home, driver, kiosk = await open_all_three(new_page, station, *size)
    card = home_card(home, station["name"])
    await expect(card.locator(".js-free")).to_have_text("2 of 2")

    await operator_api.call(
        "POST", f"/api/stations/{station['id']}/chargers", {"charger_type": "CHADEMO", "power_kw": 150}, expect=201
    )

    # No reload: the availability event alone carries the charger's connector and power.
    await expect(card.locator(".js-free")).to_have_text("3 of 3", timeout=LIVE)
    new = driver.locator(".charger", has_text="#3")
    await expect(new.locator(".charger__type")).to_have_text("CHADEMO · 150 kW", timeout=LIVE)
    await expect(new.locator(".charger__state")).to_have_text("Available")
    await expect(driver.locator("#station-free")).to_have_text("3 of 3 free now")
    tile = kiosk.locator(".kiosk-charger").nth(2)
    await expect(tile.locator(".kiosk-charger__type")).to_have_text("CHADEMO · 150 kW", timeout=LIVE)
    await expect(kiosk.locator("#kiosk-free-count")).to_have_text("3")
    await expect(kiosk.locator("#kiosk-free-label")).to_have_text("of 3 chargers free")
    await screenshot(driver, f"station-new-charger-{size[0]}")
    await screenshot(kiosk, "kiosk-new-charger", full_page=False)


async def assert_under_maintenance(home: Any, driver: Any, kiosk: Any, name: str) -> None:
    card = home_card(home, name)
    await expect(card.locator(".badge")).to_have_text("Under maintenance", timeout=LIVE)
    await expect(card.locator(".js-next")).to_have_text("Under maintenance — not taking bookings")
    await expect(card.locator(".js-free")).to_have_text(DASH)
    await expect(card.get_by_role("link", name=re.compile("Book now"))).to_be_hidden()

    await expect(driver.locator("#station-badge")).to_have_text("Under maintenance", timeout=LIVE)
    await expect(driver.locator("#station-next")).to_have_text("Under maintenance — not taking bookings")
    await expect(driver.locator("#station-free")).to_have_text("2 chargers · not in use")
    await expect(driver.locator("#closed-note")).to_contain_text("Under maintenance — not taking bookings.")
    contradiction = driver.get_by_text(re.compile("closed right now|Closes|Opens", re.IGNORECASE))
    await expect(contradiction.filter(visible=True)).to_have_count(0)
    await expect(driver.locator(".charger__state")).to_have_text(["Not in use", "Not in use"])

    await expect(kiosk.locator("#kiosk-state")).to_have_text("UNDER MAINTENANCE", timeout=LIVE)
    await expect(kiosk.locator("#kiosk-hours")).to_have_text("Not taking bookings")
    await expect(kiosk.locator("#kiosk-countdown")).to_be_empty()
    await expect(kiosk.locator(".kiosk__free-big")).to_be_hidden()
    shown = kiosk.get_by_text(re.compile(r"^(OPEN|CLOSED)$|chargers? free|Closes|Opens")).filter(visible=True)
    await expect(shown).to_have_count(0)
    await expect(kiosk.locator(".kiosk-charger__state")).to_have_text(["Not in use", "Not in use"])
    await expect(kiosk.locator("#kiosk-qr-title")).to_have_text("Station details")
    state = await kiosk.locator("#kiosk-state").bounding_box()
    panel = await kiosk.locator(".kiosk__status").bounding_box()
    assert state["x"] + state["width"] <= panel["x"] + panel["width"], "the state runs out of its panel"


@pytest.mark.parametrize("size", [(1280, 900), (390, 844)], ids=["desktop", "phone"])
async def test_maintenance_shows_one_state_everywhere_live_and_after_reload(
    new_page: Any, operator_api: Api, size: tuple[int, int]
) -> None:
    station = await create_station(operator_api, "Maintenance Depot", {"twentyfourseven": True}, timezone="UTC")
    home, driver, kiosk = await open_all_three(new_page, station, *size)
    await expect(kiosk.locator("#kiosk-state")).to_have_text("OPEN")

    await operator_api.call("PATCH", f"/api/stations/{station['id']}", {"status": "MAINTENANCE"})
    await assert_under_maintenance(home, driver, kiosk, station["name"])
    for page in (home, driver):
        overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{page.url} is {overflow}px wider than the screen"
    await screenshot(home, f"home-maintenance-{size[0]}", full_page=False)
    await screenshot(driver, f"station-maintenance-{size[0]}")
    await screenshot(kiosk, "kiosk-maintenance", full_page=False)

    for page in (home, driver, kiosk):
        await page.reload()
    await assert_under_maintenance(home, driver, kiosk, station["name"])

    await operator_api.call("PATCH", f"/api/stations/{station['id']}", {"status": "ACTIVE"})
    await expect(kiosk.locator("#kiosk-state")).to_have_text("OPEN", timeout=LIVE)
    await expect(driver.locator("#station-badge")).to_have_text("Open", timeout=LIVE)
    await expect(home_card(home, station["name"]).locator(".js-free")).to_have_text("2 of 2", timeout=LIVE)


async def test_portrait_kiosk_under_maintenance_fits(new_page: Any, operator_api: Api) -> None:
    station = await create_station(operator_api, "Portrait Maintenance", {"twentyfourseven": True}, timezone="UTC")
    await operator_api.call("PATCH", f"/api/stations/{station['id']}", {"status": "MAINTENANCE"})
    kiosk = await new_page(1080, 1920)
    await kiosk.goto(f"/kiosk/{station['id']}")
    await expect(kiosk.locator("#kiosk-state")).to_have_text("UNDER MAINTENANCE")
    state = await kiosk.locator("#kiosk-state").bounding_box()
    assert state["x"] + state["width"] <= 1080
    assert await kiosk.evaluate("document.documentElement.scrollWidth") <= 1080
    await screenshot(kiosk, "kiosk-maintenance-portrait", full_page=False)


def zone_at_local_noon() -> tuple[str, datetime]:
    """A fixed-offset zone where it is about noon now, and the local time there: so a 09:00-21:00
    station is open whatever the hour of the run."""
    now = datetime.now(UTC)
    offset = 12 - now.hour  # -11 … +12; Etc/GMT names carry the opposite sign
    zone = "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"
    return zone, now.astimezone(ZoneInfo(zone))


@pytest.mark.parametrize("size", [(1280, 900), (390, 844)], ids=["desktop", "phone"])
async def test_a_short_exceptional_closing_keeps_todays_hours_and_is_shown_as_itself(
    new_page: Any, operator_api: Api, size: tuple[int, int]
) -> None:
    zone, local = zone_at_local_noon()
    hours = {"open_time": "09:00", "close_time": "21:00"}
    station = await create_station(operator_api, "Bangalore Short Closing", hours, timezone=zone)
    home, driver, kiosk = await open_all_three(new_page, station, *size)
    await expect(driver.locator("#station-hours")).to_have_text(f"09:00 {DASH} 21:00")

    # Closed from 09:00 until half an hour ago: open again now.
    reopened = (local - timedelta(minutes=30)).replace(second=0, microsecond=0)
    closing = {
        "kind": "closing",
        "period_begin": local.replace(hour=9, minute=0, second=0, microsecond=0).isoformat(),
        "period_end": reopened.isoformat(),
    }
    await operator_api.call("POST", f"/api/stations/{station['id']}/exceptions", closing, expect=201)

    said = f"Closed 09:00{DASH}{reopened:%H:%M} today"
    await expect(driver.locator("#station-hours")).to_have_text(f"09:00 {DASH} 21:00 · {said}", timeout=LIVE)
    await expect(home_card(home, station["name"]).locator(".js-hours")).to_have_text(
        f"09:00 {DASH} 21:00 · {said}", timeout=LIVE
    )
    await expect(kiosk.locator("#kiosk-hours")).to_have_text(f"Today 09:00 {DASH} 21:00 · {said}", timeout=LIVE)
    await expect(kiosk.locator("#kiosk-state")).to_have_text("OPEN")
    await driver.reload()
    await expect(driver.locator("#station-hours")).to_have_text(f"09:00 {DASH} 21:00 · {said}")
    await screenshot(driver, f"station-short-closing-{size[0]}", full_page=False)
