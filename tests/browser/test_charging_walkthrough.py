"""Issue 14's promise, as a driver meets it on the embedded default: an operator links a charger
through the operator page, a simulated charge point (``chargeslot simulate-charger``, a real
process speaking OCPP 1.6J) connects with the key shown once, the driver books that charger for a
slot starting in a few seconds and pays in the browser, the charger is reserved for them (the
kiosk says so), and inside the slot "Start charging" on My bookings starts a transaction whose
energy rises on the page live, until "Stop charging" ends it and the receipt shows what was
delivered."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import OPERATOR, Api
from tests.helpers import (
    create_station,
    energy_rises,
    eventually,
    screenshot,
    sign_in,
    simulator_process,
    stop_process,
)

pytestmark = pytest.mark.browser

LIVE = 8_000  # ms
#: How far ahead of "now" the driver's slot starts: enough to book and pay in the browser first.
LEAD = timedelta(seconds=20)


async def test_driver_reserves_starts_and_stops_a_simulated_charger_from_my_bookings(
    new_page: Any, operator_api: Api, playwright_instance: Any, base_url: str, make_driver: Any, tmp_path: Path
) -> None:
    station = await create_station(operator_api, "Charge Walk", {"twentyfourseven": True}, timezone="UTC")
    identity = f"CP-{secrets.token_hex(3)}"

    # The operator adds a charge point (its key shown once) and links charger 1 to its connector 1.
    ops = await new_page()
    await sign_in(ops, OPERATOR, f"/operator/stations/{station['id']}")
    await ops.get_by_label("New charge point identity").fill(identity)
    await ops.get_by_role("button", name="Add charge point").click()
    await expect(ops.locator("#cp-key")).to_contain_text(f"Key for {identity}")
    key = (await ops.locator("#cp-key code").inner_text()).strip()
    await ops.get_by_label("Charger", exact=True).select_option(label="Charger 1 (CCS2)")
    await ops.get_by_role("button", name="Link charger").click()
    row = ops.locator(f'tr[data-charge-point="{identity}"]')
    await expect(row).to_contain_text("1 → charger 1")

    kiosk = await new_page(width=1920, height=1080)
    await kiosk.goto(f"/kiosk/{station['id']}")
    charger_tile = kiosk.locator("#kiosk-grid li").first

    log = tmp_path / "simulator.log"
    ws_url = base_url.replace("http://", "ws://") + f"/ocpp/{identity}"
    simulator = simulator_process(ws_url, key, log, meter_seconds=1)
    try:
        await eventually(lambda: "StatusNotification connector 1: Available" in log.read_text(), 20, "the boot")
        await expect(charger_tile).to_contain_text("Available", timeout=LIVE)
        await ops.reload()
        await expect(row).to_contain_text("Online")

        driver = make_driver("charging")
        api = await Api.open(playwright_instance, base_url, driver)
        try:
            id_tag = (await api.call("GET", "/api/auth/me"))["id_tag"]
            charger_1 = next(c for c in station["chargers"] if c["charger_number"] == 1)
            slot = (datetime.now(UTC) + LEAD).replace(microsecond=0)
            body = {
                "station_id": station["id"],
                "slot_time": slot.isoformat(),
                "duration_minutes": 15,
                "charger_id": charger_1["id"],
            }
            booking = await api.call("POST", "/api/bookings", body)
        finally:
            await api.close()
        booking_id = booking["booking_id"]

        # Paying in the browser, from My bookings' "Pay now".
        page = await new_page()
        await sign_in(page, driver, "/bookings")
        await page.evaluate("window.stillTheSamePage = true")
        card = page.locator(f'[data-booking-id="{booking_id}"]')
        await card.get_by_role("link", name=f"Pay now for booking {booking_id}").click()
        await expect(page.locator("#payment")).to_be_visible()
        await page.get_by_label("Card").check()
        await page.get_by_role("button", name="Complete payment").click()
        await expect(page.locator("#confirmation")).to_be_visible()

        # Within RESERVE_LEAD_MINUTES of the slot: the charger is reserved for this booking and driver.
        reserve = "<- ReserveNow {'connector_id': 1, 'expiry_date': "
        await eventually(lambda: reserve in log.read_text(), 10, "ReserveNow at the charger")
        line = next(x for x in log.read_text().splitlines() if x.startswith(reserve))
        assert f"'id_tag': '{id_tag}'" in line and f"'reservation_id': {booking_id}" in line, line
        expiry = slot + timedelta(minutes=15)  # NO_SHOW_MINUTES after the start
        assert f"'expiry_date': '{expiry.strftime('%Y-%m-%dT%H:%M:%SZ')}'" in line, line
        await expect(charger_tile).to_contain_text("Reserved", timeout=LIVE)
        await expect(charger_tile).to_have_attribute("data-state", re.compile("reserved"))
        await screenshot(kiosk, "charging-kiosk-reserved", full_page=False)

        await page.goto("/bookings")
        await page.evaluate("window.stillTheSamePage = true")
        card = page.locator(f'[data-booking-id="{booking_id}"]')
        await expect(card.locator(".status-pill")).to_have_text("Paid")
        start = card.get_by_role("button", name=f"Start charging for booking {booking_id}")
        # The page was opened before the slot: the button appears when the slot starts, by itself.
        await expect(start).to_be_visible(timeout=(LEAD.total_seconds() + 10) * 1000)
        await start.click()
        await eventually(lambda: "-> StartTransaction connector 1" in log.read_text(), 10, "the transaction")
        assert f"<- RemoteStartTransaction {{'id_tag': '{id_tag}', 'connector_id': 1}}" in log.read_text()
        figures = card.locator(".js-charging")
        await expect(figures).to_contain_text(re.compile(r"Charging: [\d.]+ kWh · 11 kW"), timeout=LIVE)
        await energy_rises(figures)
        await expect(charger_tile).to_contain_text("Charging", timeout=LIVE)
        await expect(charger_tile).to_contain_text("kWh · 11 kW", timeout=LIVE)  # the meter's figures too
        assert await page.evaluate("window.stillTheSamePage === true"), "the figures came with a reload"
        await screenshot(page, "charging-my-bookings-desktop", full_page=False)
        phone = await new_page(390, 844)
        await sign_in(phone, driver, "/bookings")
        phone_card = phone.locator(f'[data-booking-id="{booking_id}"]')
        await expect(phone_card.locator(".js-charging")).to_contain_text("Charging:")
        await phone_card.scroll_into_view_if_needed()
        await screenshot(phone, "charging-my-bookings-phone", full_page=False)
        await screenshot(kiosk, "charging-kiosk", full_page=False)

        await card.get_by_role("button", name=f"Stop charging for booking {booking_id}").click()
        await eventually(lambda: "-> StopTransaction" in log.read_text(), 10, "the stop")
        delivered = card.locator(".js-receipt")
        await expect(delivered).to_contain_text(re.compile(r"Energy delivered\s*[\d.]+ kWh"), timeout=LIVE)
        stop_line = next(x for x in log.read_text().splitlines()[::-1] if "-> MeterValues" in x)
        wh = int(re.search(r"(\d+) Wh", stop_line).group(1))  # type: ignore[union-attr]
        await expect(delivered).to_contain_text(f"{wh / 1000:.2f} kWh")
        await expect(card.locator(".js-charging")).to_contain_text(f"Last session: {wh / 1000:.2f} kWh")
        await expect(card.get_by_role("button", name=f"Start charging for booking {booking_id}")).to_be_visible()
        # Charging stopped, but the slot still holds the charger for its driver.
        await expect(charger_tile).to_have_attribute("data-state", "busy", timeout=LIVE)
        await expect(charger_tile).to_contain_text("In use")
        await screenshot(page, "charging-stopped-my-bookings", full_page=False)
    finally:
        stop_process(simulator)
