"""Issue 14's controls on the station page: a driver with a paid booking whose slot starts while
the page is open sees "Your booking" appear, starts a simulated charge point (``chargeslot
simulate-charger``, a real OCPP 1.6J process) from it, watches the energy rise live and stops it;
other drivers and signed-out visitors see no such panel. The operator's charge point list turns
Online by itself when the charger connects."""

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
    accessibility_problems,
    create_station,
    energy_rises,
    eventually,
    sign_in,
    simulator_process,
    stop_process,
)

pytestmark = pytest.mark.browser

LIVE = 8_000  # ms
#: How far ahead of "now" the slot starts: enough to book, pay and open the page before it.
LEAD = timedelta(seconds=10)


async def test_station_page_your_booking_panel_starts_and_stops_a_simulated_charger(
    new_page: Any, operator_api: Api, playwright_instance: Any, base_url: str, make_driver: Any, tmp_path: Path
) -> None:
    station = await create_station(operator_api, "Panel Charge", {"twentyfourseven": True}, timezone="UTC")
    path = f"/stations/{station['id']}"
    made = await operator_api.call(
        "POST", f"/api/stations/{station['id']}/charge-points", {"identity": f"CP-{secrets.token_hex(3)}"}, expect=201
    )
    identity = made["identity"]
    charger_1 = next(c for c in station["chargers"] if c["charger_number"] == 1)
    link = {"charge_point_id": made["id"], "connector_id": 1}
    await operator_api.call("PATCH", f"/api/stations/{station['id']}/chargers/{charger_1['id']}", link)

    ops = await new_page()
    await sign_in(ops, OPERATOR, f"/operator/stations/{station['id']}")
    row = ops.locator(f'tr[data-charge-point="{identity}"]')
    await expect(row).to_contain_text("Offline")

    log = tmp_path / "simulator.log"
    simulator = simulator_process(base_url.replace("http://", "ws://") + f"/ocpp/{identity}", made["auth_key"], log)
    try:
        # The operator's list follows the charger's connection without a reload.
        await ops.evaluate("window.stillTheSamePage = true")
        await expect(row).to_contain_text("Online", timeout=LIVE)
        await expect(row).to_contain_text("1 → charger 1 (Available)")
        assert await ops.evaluate("window.stillTheSamePage === true")

        driver = make_driver("panel")
        api = await Api.open(playwright_instance, base_url, driver)
        try:
            slot = (datetime.now(UTC) + LEAD).replace(microsecond=0)
            body = {
                "station_id": station["id"],
                "slot_time": slot.isoformat(),
                "duration_minutes": 15,
                "charger_id": charger_1["id"],
            }
            booking = await api.call("POST", "/api/bookings", body)
            payment = {"booking_id": booking["booking_id"], "payment_method": "CARD", "amount": booking["amount_due"]}
            await api.call("POST", "/api/payments/process", payment)
        finally:
            await api.close()
        booking_id = booking["booking_id"]

        page = await new_page(bypass_csp=True)  # for axe-core
        await sign_in(page, driver, path)
        await page.wait_for_load_state("networkidle")  # the driver's bookings have been read
        assert datetime.now(UTC) < slot, "the page was not open before the slot: LEAD is too short"
        await page.evaluate("window.stillTheSamePage = true")
        panel = page.get_by_role("region", name="Your booking")
        await expect(page.locator("#my-booking")).to_be_hidden()  # not before the slot

        # Nobody else is shown the panel: a signed-out visitor, another signed-in driver.
        visitor = await new_page()
        await visitor.goto(path)
        await expect(visitor.locator(".charger").first).to_be_visible()
        assert await visitor.locator("#my-booking").count() == 0
        other = await new_page()
        await sign_in(other, make_driver("other"), path)
        await expect(other.locator("#booking-form")).to_be_visible()

        # The slot starts while the page is open: the panel appears by itself.
        start = panel.get_by_role("button", name=f"Start charging for booking {booking_id}")
        await expect(start).to_be_visible(timeout=(LEAD.total_seconds() + 10) * 1000)
        await expect(panel).to_contain_text("Charger #1")
        problems = await accessibility_problems(page, frozenset())
        assert not problems, "axe-core on the station page with its panel:\n" + "\n".join(problems)
        await start.click()
        await eventually(lambda: "-> StartTransaction connector 1" in log.read_text(), 10, "the transaction")
        figures = panel.locator(".js-charging")
        await expect(figures).to_contain_text(re.compile(r"Charging: [\d.]+ kWh · 11 kW · \d+ min"), timeout=LIVE)
        await energy_rises(figures)
        await expect(row).to_contain_text("(Charging)", timeout=LIVE)
        assert await page.evaluate("window.stillTheSamePage === true"), "the figures came with a reload"
        await expect(other.locator("#my-booking")).to_be_hidden()

        await panel.get_by_role("button", name=f"Stop charging for booking {booking_id}").click()
        await eventually(lambda: "-> StopTransaction" in log.read_text(), 10, "the stop")
        await expect(figures).to_contain_text(re.compile(r"Last session: [\d.]+ kWh"), timeout=LIVE)
        await expect(start).to_be_visible()
    finally:
        stop_process(simulator)
