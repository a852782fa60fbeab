"""The kiosk board on the screens it is made for: landscape 1920x1080 and portrait 1080x1920,
read from a few metres away, and honest when it has lost the server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import Api, Server
from tests.helpers import create_station, screenshot

pytestmark = pytest.mark.browser

LANDSCAPE = (1920, 1080)
PORTRAIT = (1080, 1920)
PANELS = (".kiosk__head", ".kiosk__status", ".kiosk__chargers", ".kiosk__qr", ".kiosk__foot")


async def open_for_days_with_six_chargers(api: Api) -> dict[str, Any]:
    """Open now, closing at midnight before the longest weekday name 2 to 6 days ahead: the longest
    countdown an open board shows ("Closes Wednesday at 00:00 · in 4 d 16:37:05")."""
    today = datetime.now(UTC)
    ahead = max(range(2, 7), key=lambda days: len(f"{today + timedelta(days=days):%A}"))
    closed_day = (today + timedelta(days=ahead)).isoweekday()
    hours = {
        "twentyfourseven": False,
        "regular_hours": [
            {"weekday": day, "period_begin": "08:00" if day == closed_day else "00:00", "period_end": "24:00"}
            for day in range(1, 8)
        ],
    }
    station = await create_station(api, "Long Countdown Depot", hours, timezone="UTC")
    for power in (50, 60, 120, 150):
        await api.call(
            "POST", f"/api/stations/{station['id']}/chargers", {"charger_type": "CCS2", "power_kw": power}, expect=201
        )
    return station


async def box(page: Any, selector: str) -> dict[str, float]:
    found = await page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not rendered"
    return dict(found)


async def assert_single_line(page: Any, selector: str) -> None:
    height, font_size, panel_right, right = await page.locator(selector).evaluate(
        """el => {
            const r = el.getBoundingClientRect();
            const panel = el.closest('.kiosk__status').getBoundingClientRect();
            return [r.height, parseFloat(getComputedStyle(el).fontSize), panel.right, el.scrollWidth + r.left];
        }"""
    )
    assert height < 1.6 * font_size, f"{selector} takes {height:.0f}px at {font_size:.0f}px type: more than one line"
    assert right <= panel_right, f"{selector} runs out of its panel ({right:.0f} > {panel_right:.0f})"


@pytest.mark.parametrize("size", [LANDSCAPE, PORTRAIT], ids=["landscape", "portrait"])
async def test_kiosk_countdown_stays_on_one_line(new_page: Any, operator_api: Api, size: tuple[int, int]) -> None:
    station = await open_for_days_with_six_chargers(operator_api)
    page = await new_page(*size)
    await page.goto(f"/kiosk/{station['id']}")
    await expect(page.locator("#kiosk-state")).to_have_text("OPEN")
    await expect(page.locator("#kiosk-countdown")).to_contain_text(" · in ")
    await assert_single_line(page, "#kiosk-countdown")
    await screenshot(page, f"kiosk-{size[0]}x{size[1]}", full_page=False)


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


@pytest.mark.parametrize("size", [LANDSCAPE, PORTRAIT], ids=["landscape", "portrait"])
async def test_kiosk_fits_the_screen_with_a_large_qr_code(
    new_page: Any, operator_api: Api, size: tuple[int, int]
) -> None:
    station = await open_for_days_with_six_chargers(operator_api)
    width, height = size
    page = await new_page(width, height)
    await page.goto(f"/kiosk/{station['id']}")
    await expect(page.locator(".kiosk-charger")).to_have_count(6)
    boxes = {selector: await box(page, selector) for selector in PANELS}
    for selector, b in boxes.items():
        assert b["x"] >= 0 and b["y"] >= 0, selector
        assert b["x"] + b["width"] <= width + 0.5 and b["y"] + b["height"] <= height + 0.5, (
            f"{selector} leaves the screen"
        )
    if size == PORTRAIT:
        order = [boxes[selector]["y"] for selector in PANELS]
        assert order == sorted(order), "portrait panels stack top to bottom: name, status, chargers, QR, footer"
    for n in range(6):
        charger = await box(page, f".kiosk-charger >> nth={n}")
        for other in (".kiosk__qr", ".kiosk__foot"):
            assert not overlaps(charger, boxes[other]), f"charger {n + 1} runs into {other}"
    assert await page.evaluate("document.documentElement.scrollHeight") <= height

    qr = await box(page, "svg.qr")
    modules = int((await page.locator("svg.qr").get_attribute("viewBox")).split()[2])
    assert abs(qr["width"] - qr["height"]) < 1, "the QR code is square"
    assert qr["width"] >= 0.35 * min(size), (
        f"the QR code is {qr['width']:.0f}px wide: too small to scan from a step away"
    )
    assert qr["width"] / modules >= 8, "each QR module is at least 8 screen pixels"
    await screenshot(page, f"kiosk-six-chargers-{width}x{height}", full_page=False)


async def test_kiosk_says_offline_when_the_server_is_gone_and_recovers_when_it_is_back(
    new_page: Any, own_server: Server
) -> None:
    page = await new_page(*LANDSCAPE, server=own_server.url)
    found = await (await page.request.get("/api/stations?q=Pune Expressway")).json()
    await page.goto(f"/kiosk/{found['items'][0]['id']}")  # a demo station open around the clock
    board = page.locator("#main")
    offline = page.get_by_text("Offline — status may be out of date")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
    await expect(page.locator("#kiosk-state")).to_have_text("OPEN")
    await expect(offline).to_be_hidden()
    full_strength = await page.locator(".kiosk__status").evaluate("el => getComputedStyle(el).backgroundColor")

    own_server.stop()
    await expect(offline).to_be_visible(timeout=15_000)
    await expect(board).to_have_attribute("data-stale", "true")
    status = page.locator(".kiosk__status")
    assert await status.evaluate("el => getComputedStyle(el).backgroundColor") != full_strength
    assert float(await page.locator("#kiosk-state").evaluate("el => getComputedStyle(el).opacity")) <= 0.6
    await screenshot(page, "kiosk-offline", full_page=False)
    await page.set_viewport_size({"width": PORTRAIT[0], "height": PORTRAIT[1]})
    await expect(offline).to_be_in_viewport()
    await screenshot(page, "kiosk-offline-portrait", full_page=False)

    own_server.start()  # same port, same data: the board finds it again by itself
    await expect(offline).to_be_hidden(timeout=45_000)
    await expect(board).to_have_attribute("data-stale", "false")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
