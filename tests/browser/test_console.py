"""The operator console in a real Chromium: every booking, the user accounts and the insights.

The bookings and users pages run against the real server and data the tests create through the
API. The insights page is drawn from a fixed report: the test answers `/api/operator/insights`
itself (Playwright routing) with JSON of the API's documented shape, so the charts are checked
against known numbers.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import expect

from tests.browser.conftest import OPERATOR, Api
from tests.helpers import screenshot

pytestmark = pytest.mark.browser

DASH = "\u2013"  # an en dash: the one in "41-60 of 230", and what an empty cell shows
PHONE = (390, 844)
DESKTOP = (1440, 900)


async def sign_in(page: Any, credentials: dict[str, str], next_path: str) -> None:
    await page.goto(f"/login?next={next_path}")
    await page.get_by_label("Email").fill(credentials["email"])
    await page.get_by_label("Password").fill(credentials["password"])
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(lambda url: urlsplit(url).path == urlsplit(next_path).path)


async def open_station(api: Api, name: str) -> dict[str, Any]:
    """A station open around the clock in UTC, so any slot in the next days can be booked."""
    body = {
        "name": f"{name} {secrets.token_hex(2)}",
        "location": "Console Road 1",
        "city": "Testville",
        "latitude": 18.5,
        "longitude": 73.8,
        "timezone": "UTC",
        "price_per_hour": "200.00",
        "currency": "INR",
        "hours": {"twentyfourseven": True},
        "chargers": [{"charger_type": "CCS2", "power_kw": 60}],
    }
    station: dict[str, Any] = await api.call("POST", "/api/stations", body, expect=201)
    return station


async def new_driver(playwright: Any, base_url: str, tag: str) -> tuple[Api, dict[str, str]]:
    user = {"email": f"{tag}-{secrets.token_hex(4)}@example.com", "password": "plug-in-and-go-2026"}
    api = await Api.open(playwright, base_url)
    await api.call("POST", "/api/auth/register", {**user, "username": f"{tag}{secrets.token_hex(3)}"}, expect=201)
    return api, user


async def book(api: Api, station_id: int, start: datetime, pay: bool = True) -> dict[str, Any]:
    slot = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    booking: dict[str, Any] = await api.call(
        "POST", "/api/bookings", {"station_id": station_id, "slot_time": slot, "duration_minutes": 30}
    )
    if pay:
        body = {"booking_id": booking["booking_id"], "payment_method": "UPI", "amount": booking["amount_due"]}
        await api.call("POST", "/api/payments/process", body, expect=None)
    return booking


async def page_width(page: Any) -> int:
    width: int = await page.evaluate("document.documentElement.scrollWidth")
    return width


async def test_operator_filters_pages_sorts_and_cancels_bookings_and_the_csv_follows_the_filters(
    new_page: Any, operator_api: Api, playwright_instance: Any, base_url: str
) -> None:
    station = await open_station(operator_api, "Ledger Lane")
    first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    regular, _ = await new_driver(playwright_instance, base_url, "regular")
    for hour in range(21):
        await book(regular, station["id"], first + timedelta(hours=hour))
    occasional, occasional_user = await new_driver(playwright_instance, base_url, "occasional")
    held = await book(occasional, station["id"], first + timedelta(hours=30), pay=False)
    paid = await book(occasional, station["id"], first + timedelta(hours=31))
    await regular.close()
    await occasional.close()

    page = await new_page(*DESKTOP)
    await sign_in(page, OPERATOR, f"/operator/bookings?station_id={station['id']}")
    count = page.locator("#bk-count")
    rows = page.locator("#bk-table tbody tr.bk-row")
    await expect(page.get_by_label("Station")).to_have_value(str(station["id"]))
    await expect(count).to_have_text(f"1{DASH}20 of 23 bookings")
    await expect(rows).to_have_count(20)
    await expect(rows.first).to_have_attribute("data-booking-id", str(paid["booking_id"]))  # newest slot first
    await expect(page.get_by_role("button", name="Previous")).to_be_disabled()
    await page.get_by_role("button", name="Next").click()
    await expect(count).to_have_text(f"21{DASH}23 of 23 bookings")
    await expect(rows).to_have_count(3)
    await expect(page.get_by_role("button", name="Next")).to_be_disabled()
    await page.get_by_role("button", name="Previous").click()
    await expect(count).to_have_text(f"1{DASH}20 of 23 bookings")

    await page.locator("#bk-sort").click()
    await expect(page.locator("#bk-slot-head")).to_have_attribute("aria-sort", "ascending")
    await expect(rows.first).not_to_have_attribute("data-booking-id", str(paid["booking_id"]))
    await expect(rows.first).to_contain_text("regular-")

    await page.get_by_label("Driver email").fill(occasional_user["email"][:16])
    await expect(count).to_have_text(f"1{DASH}2 of 2 bookings")
    await page.get_by_label("Status").select_option("CONFIRMED")
    await expect(count).to_have_text(f"1{DASH}1 of 1 booking")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-booking-id", str(held["booking_id"]))

    href = await page.get_by_role("link", name="Download CSV").get_attribute("href")
    assert urlsplit(href).path == "/api/operator/bookings.csv"
    carried = parse_qs(urlsplit(href).query)
    assert carried == {
        "station_id": [str(station["id"])],
        "status": ["CONFIRMED"],
        "email": [occasional_user["email"][:16]],
        "sort": ["slot"],
    }
    exported = await page.request.get(href)
    assert exported.status == 200
    lines = list(csv.DictReader(io.StringIO(await exported.text())))
    assert [line["booking_id"] for line in lines] == [str(held["booking_id"])]
    assert lines[0]["driver_email"] == occasional_user["email"]

    await page.get_by_label("Driver email").fill("nobody-has-this-address")
    await expect(page.locator("#bk-state")).to_have_text("No bookings match these filters.")
    await expect(page.locator("#bk-table")).to_be_hidden()

    # Back to the paid booking: its details offer a cancellation that says what is refunded.
    await page.get_by_role("button", name="Clear filters").click()
    await page.get_by_label("Station").select_option(str(station["id"]))
    await page.get_by_label("Driver email").fill(occasional_user["email"])
    await page.get_by_label("Status").select_option("PAID")
    await expect(count).to_have_text(f"1{DASH}1 of 1 booking")
    await page.get_by_role("button", name=f"Details of booking {paid['booking_id']}").click()
    detail = page.locator(f"#bk-detail-{paid['booking_id']}")
    await expect(detail).to_contain_text(occasional_user["email"])
    await detail.get_by_role("button", name=re.compile("^Cancel with refund")).click()
    question = detail.locator(".confirm__question")
    await expect(question).to_be_focused()
    await expect(question).to_contain_text("refund ₹100.00")
    await screenshot(page, "console-bookings-1440", full_page=False)
    await detail.get_by_role("button", name="Cancel and refund ₹100.00").click()
    await expect(page.locator("#bk-state")).to_have_text("No bookings match these filters.")  # no longer PAID
    await expect(page.locator("#bk-state")).to_be_focused()
    await page.get_by_label("Status").select_option("CANCELLED")
    await expect(rows.first.locator(".status-pill")).to_have_text("Cancelled")
    payments = await operator_api.call("GET", f"/api/payments?booking_id={paid['booking_id']}")
    assert [p["status"] for p in payments] == ["REFUNDED"]

    phone = await new_page(*PHONE)
    await sign_in(phone, OPERATOR, f"/operator/bookings?station_id={station['id']}")
    await expect(phone.locator("#bk-count")).to_have_text(f"1{DASH}20 of 23 bookings")
    await phone.locator("#bk-table tbody tr.bk-row").nth(1).get_by_role("button", name=re.compile("^Details")).click()
    assert await page_width(phone) <= PHONE[0]
    await screenshot(phone, "console-bookings-390")


async def test_bookings_page_offers_retry_when_the_list_cannot_be_loaded(new_page: Any) -> None:
    page = await new_page(*PHONE)
    await sign_in(page, OPERATOR, "/operator")
    failing = True

    async def answer(route: Any) -> None:
        if failing:
            await route.fulfill(status=503, json={"status": 503, "title": "Service Unavailable"})
        else:
            await route.continue_()

    await page.route(re.compile(r"/api/operator/bookings\?"), answer)
    await page.goto("/operator/bookings")
    state = page.locator("#bk-state")
    await expect(state).to_contain_text("Couldn't load bookings")
    failing = False
    await state.get_by_role("button", name="Retry").click()
    await expect(page.locator("#bk-count")).to_have_text(re.compile(rf"^1{DASH}\d+ of \d+ bookings?$"))
    await expect(state).to_be_hidden()


async def test_admin_deactivates_a_user_whose_other_browser_is_signed_out_on_its_next_request(
    new_page: Any, admin: dict[str, str], playwright_instance: Any, base_url: str
) -> None:
    driver_api, driver_user = await new_driver(playwright_instance, base_url, "leaver")
    await driver_api.close()
    driver = await new_page(*PHONE)
    await sign_in(driver, driver_user, "/bookings")
    await expect(driver.locator(".account__name")).to_be_attached()

    page = await new_page(*DESKTOP)
    await sign_in(page, admin, "/operator/users")
    mine = page.locator("#us-table tbody tr[data-user-id]").filter(has_text=admin["email"])
    await page.get_by_label("Email or username").fill(admin["email"])
    await expect(mine).to_have_count(1)
    await expect(mine).to_contain_text("You")
    await expect(mine.get_by_role("button")).to_have_count(0)
    await expect(mine.get_by_role("combobox")).to_have_count(0)

    await page.get_by_label("Email or username").fill(driver_user["email"])
    row = page.locator("#us-table tbody tr[data-user-id]").filter(has_text=driver_user["email"])
    await expect(page.locator("#us-count")).to_have_text(f"1{DASH}1 of 1 account")
    await expect(row.get_by_label(f"Role of {driver_user['email']}")).to_have_value("driver")
    await row.get_by_role("button", name=f"Deactivate {driver_user['email']}").click()
    question = page.locator(".confirm-row:not([hidden]) .confirm__question")
    await expect(question).to_be_focused()
    await expect(question).to_contain_text("signed out everywhere at once")
    await screenshot(page, "console-users-1440", full_page=False)
    await page.get_by_role("button", name="Deactivate and sign out").click()
    await expect(row.locator(".status-pill")).to_have_text("Deactivated")
    await expect(row.get_by_role("button", name=f"Reactivate {driver_user['email']}")).to_be_focused()

    # The driver's own browser is signed out on its next request.
    me = await driver.request.get("/api/auth/me")
    assert me.status == 401
    await driver.reload()
    await expect(driver.get_by_role("banner").get_by_role("link", name="Sign in")).to_be_visible()
    await expect(driver.locator(".account__name")).to_have_count(0)

    phone = await new_page(*PHONE)
    await sign_in(phone, admin, "/operator/users")
    await expect(phone.locator("#us-count")).to_have_text(re.compile(rf"^1{DASH}\d+ of \d+ accounts$"))
    await (
        phone.locator("#us-table tbody tr[data-user-id]")
        .filter(has_text=OPERATOR["email"])
        .get_by_role("button", name="Deactivate")
        .click()
    )
    await expect(phone.get_by_role("button", name="Keep active")).to_be_visible()
    assert await page_width(phone) <= PHONE[0]
    await screenshot(phone, "console-users-390")
    await phone.get_by_role("button", name="Keep active").click()
    await expect(phone.get_by_role("button", name="Keep active")).to_be_hidden()


async def test_operator_sees_the_accounts_without_any_controls(new_page: Any) -> None:
    page = await new_page(*DESKTOP)
    await sign_in(page, OPERATOR, "/operator/users")
    rows = page.locator("#us-table tbody tr[data-user-id]")
    await expect(rows.filter(has_text=OPERATOR["email"])).to_be_visible()
    await expect(page.locator("#us-readonly")).to_contain_text("Only an admin")
    await expect(page.locator("#us-table").get_by_role("button")).to_have_count(0)
    await expect(page.locator("#us-table").get_by_role("combobox")).to_have_count(0)
    await page.get_by_label("Role").select_option("operator")
    await expect(rows.filter(has_text=OPERATOR["email"])).to_be_visible()
    await expect(rows.filter(has_text="driver@chargeslot.example")).to_have_count(0)


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def insights_report(station_id: int | None, first: str, last: str) -> dict[str, Any]:
    """A fixed report of the API's shape: 7 days, one closed (utilization null); the heatmap
    open 06:00-22:00, busiest on Friday at 18:00."""
    start = datetime.fromisoformat(first)
    days = []
    for i, share in enumerate([0.5, 0.25, 0.75, None, 1.0, 0.6, 0.1]):
        open_hours = 0.0 if share is None else 48.0
        days.append(
            {
                "date": (start + timedelta(days=i)).date().isoformat(),
                "bookings": 0 if share is None else int(share * 20),
                "booked_charger_hours": open_hours * (share or 0),
                "open_charger_hours": open_hours,
                "utilization": share,
                "revenue": [{"currency": "INR", "amount": f"{(share or 0) * 4000:.2f}"}],
            }
        )
    heatmap = []
    for weekday in range(1, 8):
        for hour in range(24):
            is_open = 6 <= hour < 22
            share = (0.9 if (weekday, hour) == (5, 18) else 0.4) if is_open else None
            heatmap.append(
                {
                    "weekday": weekday,
                    "hour": hour,
                    "booked_charger_hours": 2 * (share or 0),
                    "open_charger_hours": 2.0 if is_open else 0.0,
                    "utilization": share,
                }
            )
    return {
        "station_id": station_id,
        "from": first,
        "to": last,
        "totals": {
            "bookings": 63,
            "booked_charger_hours": 153.6,
            "open_charger_hours": 288.0,
            "utilization": 0.533,
            "revenue": [{"currency": "INR", "amount": "12800.00"}],
            "cancelled": 4,
            "expired": 2,
            "no_shows": None,
            "energy_kwh": 2150.5,
        },
        "days": days,
        "heatmap": heatmap,
    }


async def serve_insights(page: Any, asked: list[dict[str, list[str]]]) -> None:
    async def answer(route: Any) -> None:
        query = parse_qs(urlsplit(route.request.url).query)
        asked.append(query)
        station = int(query["station_id"][0]) if "station_id" in query else None
        await route.fulfill(json=insights_report(station, "2026-11-23", "2026-11-29"))

    await page.route(re.compile(r"/api/operator/insights\?"), answer)


async def test_insights_draws_both_charts_from_the_report_with_tables_of_the_same_numbers(new_page: Any) -> None:
    for width, height in (DESKTOP, PHONE):
        page = await new_page(width, height)
        asked: list[dict[str, list[str]]] = []
        await serve_insights(page, asked)
        await sign_in(page, OPERATOR, "/operator")
        await page.goto("/operator/insights")

        totals = page.locator("#in-totals")
        await expect(totals.locator(".figure").filter(has_text="Utilization").locator("dd")).to_contain_text("53%")
        await expect(totals.locator(".figure").filter(has_text="Revenue").locator("dd")).to_have_text("₹12,800.00")
        await expect(totals.locator(".figure").filter(has_text="No-shows")).to_contain_text("not recorded")
        assert set(asked[0]) == {"from", "to"}  # all stations

        days = page.locator("#in-days-chart svg[role=img]")
        await expect(days).to_have_accessible_name(re.compile("^Utilization and bookings per day"))
        # Utilization has a bar for each open day and a mark for the closed one; bookings a bar a day.
        await expect(days.locator(".chart__panel--util rect.chart__bar")).to_have_count(6)
        await expect(days.locator(".chart__panel--util rect.chart__none")).to_have_count(1)
        await expect(days.locator(".chart__panel--bookings rect.chart__bar")).to_have_count(7)
        heat = page.locator("#in-heat-chart svg[role=img]")
        await expect(heat.locator("rect.chart__cell")).to_have_count(168)
        busiest = heat.locator("rect.chart__cell").filter(has_text=f"Friday 18:00{DASH}19:00: 90%")
        await expect(busiest).to_have_count(1)

        # The same numbers as tables, for screen readers (and anyone who opens them).
        day_rows = page.locator("#in-days-table tbody tr")
        await expect(day_rows).to_have_count(7)
        await expect(day_rows.nth(2)).to_contain_text("75%")
        await expect(day_rows.nth(3)).to_contain_text(DASH)
        heat_rows = page.locator("#in-heat-table tbody tr")
        await expect(heat_rows).to_have_count(7)
        friday = heat_rows.nth(4)
        await expect(friday.locator("th")).to_have_text(WEEKDAYS[4])
        await expect(friday.locator("td").nth(18)).to_have_text("90%")
        await expect(friday.locator("td").nth(3)).to_have_text(DASH)

        assert await page_width(page) <= width
        await screenshot(page, f"console-insights-{width}")
        await page.get_by_text("Show each day as a table").click()
        await expect(page.locator("#in-days-table")).to_be_visible()
        assert await page_width(page) <= width

    stations = await page.locator("#in-station option").all_inner_texts()
    await page.get_by_label("Station").select_option(label=stations[1])
    await expect(page.locator("#in-range")).to_contain_text(stations[1])
    assert "station_id" in asked[-1]


async def test_every_operator_page_fits_a_390px_phone(new_page: Any, operator_api: Api) -> None:
    station = await open_station(operator_api, "Narrow Yard")
    page = await new_page(*PHONE)
    await serve_insights(page, [])
    await sign_in(page, OPERATOR, "/operator")
    loaded = re.compile("^(ready|empty)$")
    ready = {
        "/operator": ("#op-state", loaded),
        "/operator/stations/new": ("#station-form", None),
        f"/operator/stations/{station['id']}": ("#op-chargers tbody tr", None),
        "/operator/bookings": ("#bk-state", loaded),
        "/operator/users": ("#us-state", loaded),
        "/operator/insights": ("#in-state", loaded),
    }
    for path, (shown, state) in ready.items():
        await page.goto(path)
        if state is None:
            await expect(page.locator(shown).first).to_be_visible()
        else:
            await expect(page.locator(shown)).to_have_attribute("data-state", state)
        await expect(page.get_by_role("navigation", name="Operator console")).to_be_visible()
        width = await page_width(page)
        assert width <= PHONE[0], f"{path} is {width}px wide on a {PHONE[0]}px phone"


async def test_operator_pages_show_a_closing_live_without_a_reload(new_page: Any, operator_api: Api) -> None:
    """An operator watching the list and a station's page sees the badge turn Closed the moment
    another operator adds a closing, as drivers' pages do (it used to stay "Open")."""
    station = await open_station(operator_api, "Live Badge")
    listing = await new_page(*DESKTOP)
    await sign_in(listing, OPERATOR, "/operator")
    row_badge = listing.locator(f'#op-stations tr[data-station-id="{station["id"]}"] .badge')
    await expect(row_badge).to_have_text(re.compile("Open", re.IGNORECASE))
    editor = await new_page(*DESKTOP)
    await sign_in(editor, OPERATOR, f"/operator/stations/{station['id']}")
    await expect(editor.locator("#op-badge")).to_have_text(re.compile("Open", re.IGNORECASE))
    now = datetime.now(UTC)
    closing = {
        "kind": "closing",
        "period_begin": (now - timedelta(minutes=1)).isoformat(),
        "period_end": (now + timedelta(hours=1)).isoformat(),
    }
    await operator_api.call("POST", f"/api/stations/{station['id']}/exceptions", closing, expect=201)
    await expect(row_badge).to_have_text(re.compile("Closed", re.IGNORECASE))
    await expect(editor.locator("#op-badge")).to_have_text(re.compile("Closed", re.IGNORECASE))


async def test_the_bookings_page_shows_a_new_booking_without_a_reload(
    new_page: Any, operator_api: Api, playwright_instance: Any, base_url: str
) -> None:
    station = await open_station(operator_api, "Live Ledger")
    page = await new_page(*DESKTOP)
    await sign_in(page, OPERATOR, f"/operator/bookings?station_id={station['id']}")
    await expect(page.locator("#bk-state")).to_contain_text("No bookings match")
    driver, _ = await new_driver(playwright_instance, base_url, "walkin")
    soon = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=3)
    await book(driver, station["id"], soon)
    await driver.close()
    await expect(page.locator("#bk-table tbody tr.bk-row")).to_have_count(1)
    await expect(page.locator("#bk-count")).to_contain_text("of 1 booking")
