"""Every page, checked by axe-core as it is once loaded: no serious or critical violation.

axe-core comes from the npm registry (``tests/browser/axe``, installed by ``make install``) and is
injected by the test into a context that bypasses the site's CSP; the site never serves it.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from tests.helpers import accessibility_problems, screenshot, sign_in

pytestmark = pytest.mark.browser

PHONE, DESKTOP = (390, 844), (1280, 900)
KIOSK_LANDSCAPE, KIOSK_PORTRAIT = (1920, 1080), (1080, 1920)


#: Swagger UI (a shipped package, not our markup) nests its "copy path" and lock buttons inside each
#: operation's summary button. Everything else on /docs, contrast included, must pass.
TOLERATED = {"/docs": frozenset({"nested-interactive"})}


async def assert_accessible(page: Any, path: str, ready: str) -> None:
    await page.goto(path)
    await expect(page.locator(ready).first).to_be_visible()
    await page.wait_for_load_state("networkidle")
    problems = await accessibility_problems(page, TOLERATED.get(path, frozenset()))
    assert not problems, f"axe-core on {path} ({page.viewport_size['width']} px):\n" + "\n".join(problems)
    width = page.viewport_size["width"]
    name = path.strip("/").replace("/", "-") or "home"
    await screenshot(page, f"page-{name}-{width}", full_page=not name.startswith("kiosk"))


PUBLIC = [
    ("/", "li.station-card"),
    ("/login", "form"),
    ("/register", "form"),
    ("/nope", "h1"),
    ("/docs", ".swagger-ui .info"),
]


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize(("path", "ready"), PUBLIC, ids=[path for path, _ in PUBLIC])
async def test_public_pages_have_no_serious_accessibility_violations(
    new_page: Any, path: str, ready: str, size: tuple[int, int]
) -> None:
    page = await new_page(*size, bypass_csp=True)
    await assert_accessible(page, path, ready)


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_station_page_signed_out_and_signed_in_is_accessible(
    new_page: Any, any_hours_station: dict[str, Any], driver_with_bookings: dict[str, str], size: tuple[int, int]
) -> None:
    path = f"/stations/{any_hours_station['id']}"
    page = await new_page(*size, bypass_csp=True)
    await assert_accessible(page, path, ".charger")
    await sign_in(page, driver_with_bookings, path)
    await expect(page.locator("#slot-check")).not_to_be_empty()
    await assert_accessible(page, path, "#booking-form")


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_my_bookings_with_pay_and_cancel_is_accessible(
    new_page: Any, driver_with_bookings: dict[str, str], size: tuple[int, int]
) -> None:
    page = await new_page(*size, bypass_csp=True)
    await sign_in(page, driver_with_bookings, "/bookings")
    await assert_accessible(page, "/bookings", ".booking-card .js-pay")


@pytest.mark.parametrize("size", [KIOSK_LANDSCAPE, KIOSK_PORTRAIT], ids=["landscape", "portrait"])
async def test_kiosk_boards_are_accessible(
    new_page: Any, any_hours_station: dict[str, Any], size: tuple[int, int]
) -> None:
    page = await new_page(*size, bypass_csp=True)
    await assert_accessible(page, f"/kiosk/{any_hours_station['id']}", ".kiosk-charger")
    await assert_accessible(page, "/kiosk/0", "h1")


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_operator_pages_are_accessible(
    new_page: Any, admin: dict[str, str], any_hours_station: dict[str, Any], size: tuple[int, int]
) -> None:
    page = await new_page(*size, bypass_csp=True)
    await sign_in(page, admin, "/operator")
    pages = [
        ("/operator", "#main h1"),
        ("/operator/stations/new", "form"),
        (f"/operator/stations/{any_hours_station['id']}", "button:has-text('Take out of service')"),
        ("/operator/bookings", "#main h1"),
        ("/operator/users", "#main h1"),
        ("/operator/insights", "#main h1"),
    ]
    for path, ready in pages:
        await assert_accessible(page, path, ready)
