"""What operators, kiosks and drivers see of chargers linked over OCPP, in a real Chromium, with a
simulated charge point (the ``ocpp`` package) connected to the real server."""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest
from playwright.async_api import expect

from app.simulator import connected
from tests.browser.conftest import DRIVER, OPERATOR, Api
from tests.helpers import create_station, screenshot, sign_in

pytestmark = pytest.mark.browser

LIVE = 8_000  # ms


async def test_operator_adds_a_charge_point_and_the_kiosk_shows_what_the_charger_reports(
    new_page: Any, operator_api: Api, base_url: str
) -> None:
    station = await create_station(operator_api, "OCPP Yard", {"twentyfourseven": True})
    identity = f"CP-{secrets.token_hex(3)}"
    page = await new_page()
    await sign_in(page, OPERATOR, f"/operator/stations/{station['id']}")
    await page.get_by_label("New charge point identity").fill(identity)
    await page.get_by_role("button", name="Add charge point").click()
    key_box = page.locator("#cp-key")
    await expect(key_box).to_contain_text(f"Key for {identity}")
    key = (await page.locator("#cp-key code").inner_text()).strip()
    row = page.locator(f'tr[data-charge-point="{identity}"]')
    await expect(row).to_contain_text("Offline")
    await page.get_by_label("Charger", exact=True).select_option(label="Charger 1 (CCS2)")
    await page.get_by_role("button", name="Link charger").click()
    await expect(row).to_contain_text("1 → charger 1")

    kiosk = await new_page(width=1920, height=1080)
    await kiosk.goto(f"/kiosk/{station['id']}")
    first = kiosk.locator("#kiosk-grid li").first
    ws_url = base_url.replace("http://", "ws://") + f"/ocpp/{identity}"
    async with connected(ws_url, key, say=lambda _: None) as point:
        await point.boot()
        await point.status(1, "Available")
        await expect(first).to_contain_text("Available", timeout=LIVE)
        await point.status(1, "Faulted", error_code="GroundFailure")
        await expect(first).to_have_attribute("data-state", "faulted", timeout=LIVE)
        await expect(first).to_contain_text("Faulted")
        await screenshot(kiosk, "kiosk-faulted", full_page=False)
        await point.status(1, "Reserved")
        await expect(first).to_contain_text("Reserved", timeout=LIVE)
    await expect(first).to_contain_text("Offline", timeout=LIVE)
    await page.reload()
    await expect(page.locator(f'tr[data-charge-point="{identity}"]')).to_contain_text("Simulator")


async def test_my_bookings_shows_the_drivers_id_tag_with_a_qr(new_page: Any) -> None:
    page = await new_page()
    await sign_in(page, DRIVER, "/bookings")
    tag = page.locator("#id-tag")
    await expect(tag).to_have_text(re.compile(r"^[A-Z0-9]{16}$"))
    await expect(page.get_by_role("img", name="QR code of your id tag")).to_be_visible()
