"""What a driver, a kiosk and an operator see in a real Chromium against a real server.

Each test that changes a station's hours works on a station it creates through the operator API,
so the tests do not depend on the hour of day or on each other.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect

from tests.browser.conftest import DRIVER, OPERATOR, Api
from tests.helpers import close_now, create_station, screenshot, sign_in

pytestmark = pytest.mark.browser

LIVE = 8_000  # ms: a pushed change must show well within this


def card(page: Any, name: str) -> Any:
    return page.locator("li.station-card").filter(has=page.get_by_role("link", name=name, exact=True))


async def test_driver_registers_books_pays_and_finds_the_booking(new_page: Any) -> None:
    page = await new_page(timezone="America/New_York")  # the browser's zone must not matter
    email = f"ev-{secrets.token_hex(4)}@example.com"
    await page.goto("/register?next=/")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Username").fill(f"ev{secrets.token_hex(4)}")
    await page.get_by_label("Password").fill("plug-in-and-go-2026")
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url("**/")
    await expect(page.locator(".account__name")).to_be_visible()

    pune = card(page, "Pune Expressway Supercharge")
    await expect(pune.locator(".badge")).to_have_text("Open")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
    await screenshot(page, "home")
    await pune.get_by_role("link", name=re.compile("Book now")).click()

    await expect(page.locator("#station-badge")).to_have_text("Open")
    await expect(page.locator("#slot-check")).to_contain_text("free for this slot")
    await expect(page.locator(".station-head__zone")).to_contain_text("Asia/Kolkata")
    await page.get_by_label("Duration").select_option("90")
    await screenshot(page, "station")
    await page.get_by_role("button", name="Book this slot").click()

    payment = page.locator("#payment")
    await expect(payment).to_be_visible()
    await expect(page.locator("#amount-due")).to_have_text("₹270.00")
    await page.get_by_label("Card").check()
    await screenshot(page, "payment")
    await page.get_by_role("button", name="Complete payment").click()
    confirmation = page.locator("#confirmation")
    await expect(confirmation).to_be_visible()
    await expect(payment).to_be_hidden()
    await expect(confirmation).to_contain_text(re.compile(r"TXN_\w+"))
    transaction = re.search(r"TXN_\w+", await confirmation.inner_text())
    assert transaction is not None
    await screenshot(page, "payment-confirmation")

    await confirmation.get_by_role("link", name="View my bookings").click()
    booking = page.locator(".booking-card").first
    await expect(booking).to_contain_text("Pune Expressway Supercharge")
    await expect(booking.locator(".status-pill")).to_have_text("Paid")
    await expect(booking).to_contain_text("₹270.00")
    await expect(booking).to_contain_text("Asia/Kolkata")
    await expect(booking.get_by_role("button", name=re.compile("Cancel booking"))).to_be_visible()
    if await booking.locator(".js-receipt").is_visible():
        await expect(booking.locator(".js-receipt")).to_contain_text(transaction[0])
    await screenshot(page, "bookings")


async def test_closed_station_offers_no_booking(new_page: Any, operator_api: Api) -> None:
    station = await create_station(operator_api, "Shut Depot", {"twentyfourseven": False, "regular_hours": []})
    page = await new_page()
    await sign_in(page, DRIVER)
    entry = card(page, station["name"])
    await expect(entry.locator(".badge")).to_have_text("Closed")
    await expect(entry.get_by_role("link", name=re.compile("Book now"))).to_be_hidden()
    await expect(entry.get_by_role("link", name=re.compile("Details"))).to_be_visible()

    await page.goto(f"/stations/{station['id']}")
    await expect(page.locator("#station-badge")).to_have_text("Closed")
    await expect(page.locator("#closed-note")).to_be_visible()
    await expect(page.get_by_role("button", name="Book this slot")).to_be_hidden()


async def test_station_page_flips_to_closed_live_and_hides_payment(new_page: Any, operator_api: Api) -> None:
    station = await create_station(operator_api, "Flip Point", {"twentyfourseven": True})
    page = await new_page()
    await sign_in(page, DRIVER, f"/stations/{station['id']}")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
    await page.get_by_role("button", name="Book this slot").click()
    await expect(page.locator("#payment")).to_be_visible()

    closing = await close_now(operator_api, station["id"])
    await expect(page.locator("#station-badge")).to_have_text("Closed", timeout=LIVE)
    await expect(page.locator("#payment")).to_be_hidden()
    await expect(page.get_by_role("button", name="Complete payment")).to_be_hidden()
    await expect(page.locator("#payment-paused")).to_be_visible()
    await expect(page.locator("#closed-note")).to_be_visible()
    await expect(page.locator("#announcer")).to_contain_text("closed")
    await screenshot(page, "station-closed-live")

    await operator_api.call("DELETE", f"/api/stations/{station['id']}/exceptions/{closing['id']}", expect=None)
    await expect(page.locator("#station-badge")).to_have_text("Open", timeout=LIVE)
    await expect(page.get_by_role("button", name="Complete payment")).to_be_visible()
    await expect(page.locator("#closed-note")).to_be_hidden()


async def test_kiosk_flips_live_and_recovers_after_its_socket_is_cut(new_page: Any, operator_api: Api) -> None:
    station = await create_station(operator_api, "Kiosk Plaza", {"twentyfourseven": True})
    page = await new_page(width=1920, height=1080)
    sockets: list[Any] = []
    refuse = False

    async def relay(ws: Any) -> None:
        if refuse:
            await ws.close()
            return
        ws.connect_to_server()
        sockets.append(ws)

    await page.route_web_socket(re.compile(r"/ws/"), relay)
    # The kiosk's own clock is three hours fast: the board must still count down by the server's.
    await page.clock.install(time=datetime.now(UTC) + timedelta(hours=3))
    await page.goto(f"/kiosk/{station['id']}")
    state = page.locator("#kiosk-state")
    conn = page.locator("#conn")
    await expect(state).to_have_text("OPEN")
    await expect(conn).to_have_attribute("data-state", "connected")
    await expect(page.locator("svg.qr")).to_be_visible()
    await expect(page.locator("#kiosk-grid li")).to_have_count(2)

    closing = await close_now(operator_api, station["id"])
    await expect(state).to_have_text("CLOSED", timeout=LIVE)
    countdown = page.locator("#kiosk-countdown")
    await expect(countdown).to_contain_text(re.compile(r"Opens .* in 01:5\d:\d\d"))  # the closing ends in 2 h
    kolkata_now = datetime.now(ZoneInfo("Asia/Kolkata"))
    shown = await page.locator("#kiosk-clock").inner_text()
    assert shown in {(kolkata_now + timedelta(minutes=m)).strftime("%H:%M") for m in (-1, 0, 1)}
    first = await countdown.inner_text()
    await expect(countdown).not_to_have_text(first, timeout=3000)  # it ticks every second
    await screenshot(page, "kiosk", full_page=False)

    # Cut the socket and keep refusing new ones: the board says so, then heals by itself.
    refuse = True
    for ws in sockets:
        await ws.close()
    await expect(conn).to_have_attribute("data-state", "reconnecting")
    await expect(conn).to_contain_text("Reconnecting")
    await operator_api.call("DELETE", f"/api/stations/{station['id']}/exceptions/{closing['id']}", expect=None)
    await asyncio.sleep(1.5)  # let at least one reconnection attempt be refused
    await expect(conn).to_have_attribute("data-state", "reconnecting")
    refuse = False
    await expect(conn).to_have_attribute("data-state", "connected", timeout=15_000)
    await expect(state).to_have_text("OPEN", timeout=LIVE)  # the fresh snapshot brings the missed change


async def test_operator_edits_hours_and_the_driver_page_follows(new_page: Any, operator_api: Api) -> None:
    station = await create_station(operator_api, "Hours Hub", {"twentyfourseven": True})
    driver = await new_page()
    await driver.goto(f"/stations/{station['id']}")
    await expect(driver.locator("#station-badge")).to_have_text("Open")
    await expect(driver.get_by_role("link", name="Sign in to book")).to_be_visible()
    await expect(driver.locator("#conn")).to_have_attribute("data-state", "connected")

    operator = await new_page()
    await sign_in(operator, OPERATOR, "/operator")
    row = operator.locator("#op-stations tr").filter(has_text=station["name"])
    await expect(row).to_be_visible()
    await screenshot(operator, "operator")
    await row.get_by_role("link", name=re.compile("^Edit")).click()

    # Open only tomorrow 10:00-11:00, station time: closed from now on.
    tomorrow = datetime.now(ZoneInfo("Asia/Kolkata")).isoweekday() % 7 + 1
    await expect(operator.get_by_label("Open 24/7")).to_be_checked()
    await operator.get_by_label("Open 24/7").uncheck()
    await operator.get_by_role("button", name="Add period").click()
    period = operator.locator(".hours-rows tbody tr").last
    await period.get_by_label("Day").select_option(str(tomorrow))
    await period.get_by_label("Opens").fill("10:00")
    await period.get_by_label("Closes").fill("11:00")
    await operator.get_by_role("button", name="Save hours").click()
    await expect(operator.locator("#hours-saved")).to_contain_text("Hours saved")
    await screenshot(operator, "operator-station")

    await expect(driver.locator("#station-badge")).to_have_text("Closed", timeout=LIVE)
    await expect(driver.locator("#closed-note")).to_be_visible()
    await expect(driver.locator("#station-next")).to_contain_text("Opens")
    await expect(driver.get_by_role("link", name="Sign in to book")).to_be_hidden()

    # Back to 24/7 from the same editor: the driver page reopens.
    await operator.get_by_label("Open 24/7").check()
    await operator.get_by_role("button", name="Save hours").click()
    await expect(driver.locator("#station-badge")).to_have_text("Open", timeout=LIVE)


async def test_home_page_fits_a_phone_screen(new_page: Any) -> None:
    page = await new_page(width=375, height=812)
    await page.goto("/")
    await expect(card(page, "Pune Expressway Supercharge").locator(".badge")).to_have_text("Open")
    overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"page is {overflow}px wider than the phone screen"
    await screenshot(page, "home-375", full_page=False)


async def test_operator_creates_a_station_and_manages_closings_and_chargers(new_page: Any) -> None:
    page = await new_page()
    await sign_in(page, OPERATOR, "/operator/stations/new")
    name = f"Harbour Charge {secrets.token_hex(2)}"
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Address").fill("Pier 4")
    await page.get_by_label("City").fill("Kochi")
    await page.get_by_label("Latitude").fill("9.97")
    await page.get_by_label("Longitude").fill("76.28")
    await page.get_by_label("Time zone").fill("Asia/Kolkata")
    await page.get_by_label("Price per hour").fill("95.50")
    await page.get_by_label("Currency").fill("INR")
    await page.get_by_label("Open 24/7").check()
    await page.get_by_label("How many").fill("2")
    await page.get_by_role("button", name="Create station").click()
    await page.wait_for_url(re.compile(r"/operator/stations/\d+$"))
    await expect(page.get_by_role("heading", name=name)).to_be_visible()
    await expect(page.locator("#op-badge")).to_have_text("Open")
    chargers = page.locator("#op-chargers tbody tr")
    await expect(chargers).to_have_count(2)

    # An exceptional closing from a minute ago, station time: the station closes; removing it reopens.
    local_now = datetime.now(ZoneInfo("Asia/Kolkata")).replace(second=0, microsecond=0)
    await page.get_by_label("Kind").select_option("closing")
    await page.get_by_label("From").fill((local_now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_label("Until").fill((local_now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_role("button", name="Add", exact=True).click()
    closings = page.locator("#exc-list li[data-kind=closing]")
    await expect(closings).to_have_count(1)
    await expect(page.locator("#op-badge")).to_have_text("Closed")
    await closings.get_by_role("button", name=re.compile("^Remove")).click()
    await expect(closings).to_have_count(0)
    await expect(page.locator("#op-badge")).to_have_text("Open")

    await page.get_by_label("Connector", exact=True).select_option("CHADEMO")
    await page.get_by_label("Power (kW)").fill("50")
    await page.get_by_role("button", name="Add charger").click()
    await expect(chargers).to_have_count(3)
    await expect(chargers.nth(2)).to_contain_text("CHADEMO")
    await chargers.first.get_by_role("button", name=re.compile("out of service")).click()
    await expect(chargers.first).to_contain_text("Out of service")
    await expect(chargers.first.get_by_role("button", name=re.compile("to service"))).to_be_visible()
