"""The HTML pages: each renders, carries nothing the CSP would block, and shows what needs no API."""

from __future__ import annotations

import re
from dataclasses import replace
from functools import partial
from typing import Any

import pytest

from app.config import ConfigError, load_settings
from app.hours import HoursSpec
from app.models import Role, StationStatus
from app.state import state
from app.stations import ChargerSpec
from tests import helpers
from tests.conftest import ApiClient

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style\b|\sstyle\s*=", re.IGNORECASE)
#: The operator console's pages beyond the station editor, with the module each one loads.
CONSOLE = {
    "/operator/bookings": "js/operator-bookings.js",
    "/operator/users": "js/operator-users.js",
    "/operator/insights": "js/insights.js",
}
#: What Chromium sends when a person opens a page.
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

#: The pages' station: open all hours near Pune, with a fast and a slow charger.
make_station = partial(
    helpers.make_station,
    name="Pune Expressway Supercharge",
    location="Mumbai-Pune Expressway, Lonavala",
    latitude=18.75,
    longitude=73.4,
    timezone="Asia/Kolkata",
    price=18000,
    hours=HoursSpec(twentyfourseven=True),
    chargers=(ChargerSpec("CCS2", 150), ChargerSpec("TYPE2", 22)),
)


async def page(client: ApiClient, path: str, status: int = 200) -> str:
    response = await client.get(path, headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == status, path
    assert response.content_type.startswith("text/html"), path
    html: str = await response.get_data(as_text=True)
    return html


def assert_csp_safe(html: str) -> None:
    assert not INLINE_SCRIPT.search(html), "inline <script> would be blocked by the CSP"
    assert not INLINE_HANDLER.search(html), "inline event handler would be blocked by the CSP"
    assert not INLINE_STYLE.search(html), "inline style would be blocked by the CSP"


async def test_every_page_renders_without_anything_the_csp_blocks(client: ApiClient, operator: Any) -> None:
    station = await make_station()
    paths = [
        "/",
        f"/stations/{station.id}",
        "/login",
        "/register",
        "/bookings",
        f"/kiosk/{station.id}",
    ]
    for path in paths:
        assert_csp_safe(await page(client, path))
    assert_csp_safe(await page(client, "/operator", status=403))
    await client.sign_in(operator)
    for path in ["/", "/bookings", "/operator", "/operator/stations/new", f"/operator/stations/{station.id}", *CONSOLE]:
        assert_csp_safe(await page(client, path))


async def test_pages_are_served_with_a_csp_that_forbids_inline_script(client: ApiClient) -> None:
    response = await client.get("/")
    csp = response.headers["Content-Security-Policy"]
    script_src = next(part for part in csp.split(";") if part.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'self'" in script_src


async def test_page_scripts_and_stylesheet_are_served(client: ApiClient) -> None:
    names = ("api", "live", "home", "station", "booking", "bookings", "kiosk", "operator", "auth", "layout")
    console = ("console", "operator-bookings", "operator-users", "insights", "svg-chart")
    for name in (*names, *console):
        response = await client.get(f"/static/js/{name}.js")
        assert response.status_code == 200, name
        assert "javascript" in response.content_type
    css = await client.get("/static/css/app.css")
    assert css.status_code == 200 and css.content_type.startswith("text/css")


async def test_station_page_names_the_station_and_its_time_zone(client: ApiClient) -> None:
    station = await make_station(name="Berlin Adlershof Ladepark", timezone="Europe/Berlin", city="Berlin")
    html = await page(client, f"/stations/{station.id}")
    assert "<title>Berlin Adlershof Ladepark · Chargeslot</title>" in html
    assert "Europe/Berlin" in html
    assert 'data-timezone="Europe/Berlin"' in html


async def test_signed_out_driver_gets_a_sign_in_link_that_returns_to_the_station(client: ApiClient) -> None:
    station = await make_station()
    html = await page(client, f"/stations/{station.id}")
    assert f'href="/login?next=/stations/{station.id}"' in html or f"next=%2Fstations%2F{station.id}" in html
    assert 'id="booking-form"' not in html


async def test_signed_in_driver_gets_the_booking_form(client: ApiClient, driver: Any) -> None:
    station = await make_station()
    await client.sign_in(driver)
    html = await page(client, f"/stations/{station.id}")
    assert 'id="booking-form"' in html and 'id="payment"' in html
    assert "Sign in to book" not in html


@pytest.mark.parametrize(
    "path", ["/stations/abc", "/stations/999999", "/stations/0", "/nope", "/operator/stations/9999"]
)
async def test_unknown_page_is_a_404_page_for_browsers_and_problem_json_for_api_clients(
    client: ApiClient, operator: Any, path: str
) -> None:
    await client.sign_in(operator)
    html = await page(client, path, status=404)
    assert "couldn't find" in html and 'class="site-header"' in html
    assert_csp_safe(html)
    for accept in ("application/json", "*/*", None):
        response = await client.get(path, headers={"Accept": accept} if accept else {})
        assert response.status_code == 404, accept
        assert response.content_type == "application/problem+json", accept
        assert (await response.get_json())["code"] == "not_found"


@pytest.mark.parametrize("path", ["/kiosk/0", "/kiosk/999999", "/kiosk/abc"])
async def test_unknown_kiosk_is_a_kiosk_board_saying_so(client: ApiClient, path: str) -> None:
    html = await page(client, path, status=404)
    assert 'class="kiosk' in html and "Unknown station" in html
    assert "site-header" not in html and "couldn't find" not in html
    assert_csp_safe(html)
    response = await client.get(path, headers={"Accept": "application/json"})
    assert response.status_code == 404 and response.content_type == "application/problem+json"


async def test_api_paths_answer_problem_json_even_to_browsers(client: ApiClient) -> None:
    response = await client.get("/api/stations/999999", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 404 and response.content_type == "application/problem+json"
    response = await client.get("/api/nothing-here", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 404 and response.content_type == "application/problem+json"


async def test_kiosk_embeds_a_qr_code_for_the_absolute_booking_link(client: ApiClient) -> None:
    station = await make_station()
    html = await page(client, f"/kiosk/{station.id}")
    assert re.search(r'<svg[^>]*class="qr"', html)
    assert "<path" in html
    assert f"http://localhost/stations/{station.id}" in html
    assert "Sign in" not in html


async def test_kiosk_links_to_public_url_when_it_is_set(
    client: ApiClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    station = await make_station()
    settings = state(app).settings
    monkeypatch.setattr(state(app), "settings", replace(settings, public_url="https://charge.example"))
    html = await page(client, f"/kiosk/{station.id}")
    assert f"https://charge.example/stations/{station.id}" in html
    assert "http://localhost" not in html


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("https://charge.example", "https://charge.example"),
        ("http://charge.local:8000/", "http://charge.local:8000"),
        ("", None),
    ],
)
def test_public_url_is_a_base_url(raw: str, expected: str | None) -> None:
    assert load_settings({"PUBLIC_URL": raw, "SECRET_KEY": "k" * 40, "REDIS_URL": "redis://x"}).public_url == expected


@pytest.mark.parametrize(
    "raw", ["charge.example", "ftp://charge.example", "https://charge.example/app", "https://x?a=1", "https://:80"]
)
def test_public_url_with_a_path_or_another_scheme_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="PUBLIC_URL"):
        load_settings({"PUBLIC_URL": raw, "SECRET_KEY": "k" * 40, "REDIS_URL": "redis://x"})


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/stations/3", "/stations/3"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
    ],
)
async def test_login_only_returns_to_paths_on_this_site(client: ApiClient, target: str, expected: str) -> None:
    html = await page(client, f"/login?next={target}")
    assert f'data-next="{expected}"' in html


async def test_operator_pages_tell_drivers_they_are_for_operators(client: ApiClient, driver: Any) -> None:
    station = await make_station()
    signed_out = await page(client, "/operator", status=403)
    assert "Operators only" in signed_out and "js/operator.js" not in signed_out
    await client.sign_in(driver)
    for path in ("/operator", "/operator/stations/new", f"/operator/stations/{station.id}", *CONSOLE):
        html = await page(client, path, status=403)
        assert "Operators only" in html
        assert "js/operator" not in html and "js/insights.js" not in html


async def test_operator_sees_the_station_editor(client: ApiClient, operator: Any) -> None:
    station = await make_station()
    await client.sign_in(operator)
    html = await page(client, f"/operator/stations/{station.id}")
    assert "Operators only" not in html
    for marker in ('id="station-form"', 'id="hours-form"', 'id="exc-form"', 'id="charger-form"'):
        assert marker in html
    assert 'href="/operator"' in html
    await page(client, "/operator/stations/999999", status=404)


async def test_header_shows_who_is_signed_in(client: ApiClient, driver: Any) -> None:
    assert "Sign in" in await page(client, "/")
    await client.sign_in(driver)
    html = await page(client, "/")
    assert driver.username in html and 'id="sign-out"' in html


async def test_pages_stay_out_of_the_api_document(client: ApiClient) -> None:
    paths = (await (await client.get("/openapi.json")).get_json())["paths"]
    assert not [p for p in paths if not p.startswith(("/api/", "/ws/", "/healthz", "/readyz", "/metrics"))]


async def test_health_endpoints_are_in_the_api_document(client: ApiClient) -> None:
    paths = (await (await client.get("/openapi.json")).get_json())["paths"]
    assert set(paths["/healthz"]["get"]["responses"]) == {"200"}
    assert set(paths["/readyz"]["get"]["responses"]) == {"200", "503"}


async def test_docs_page_loads_swagger_ui_from_this_site_under_the_site_csp(client: ApiClient) -> None:
    docs = await client.get("/docs")
    html = await docs.get_data(as_text=True)
    assert_csp_safe(html)
    assert docs.headers["Content-Security-Policy"] == (await client.get("/")).headers["Content-Security-Policy"]
    assets = re.findall(r'(?:src|href)="(/[^"]+)"', html)
    assert "/docs/assets/swagger-ui-bundle.js" in assets and "/static/js/docs.js" in assets
    for path in assets:
        assert (await client.get(path)).status_code == 200, path
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html), "nothing from another host"
    assert (await client.get("/docs/assets/oauth2-redirect.html")).status_code == 404


async def test_charger_type_filter_lists_each_connector_once(client: ApiClient) -> None:
    await make_station()
    html = await page(client, "/")
    options = re.findall(r'<option value="([^"]*)"', html.split('id="filter-type"', 1)[-1].split("</select>", 1)[0])
    types = [value for value in options if value]
    assert sorted(types) == ["CCS2", "CHADEMO", "TYPE2"]


async def test_console_pages_load_their_module_and_link_each_other(client: ApiClient, operator: Any) -> None:
    await client.sign_in(operator)
    for path, module in CONSOLE.items():
        html = await page(client, path)
        assert_csp_safe(html)
        assert f'src="/static/{module}"' in html, path
        nav = html.split('aria-label="Operator console"', 1)[1].split("</nav>", 1)[0]
        for other in ("/operator", *CONSOLE):
            assert f'href="{other}"' in nav, (path, other)
        assert re.search(rf'href="{path}" aria-current="page"', nav), path


async def test_bookings_page_offers_the_csv_and_the_filters(client: ApiClient, operator: Any) -> None:
    await client.sign_in(operator)
    html = await page(client, "/operator/bookings")
    assert 'id="bk-csv" href="/api/operator/bookings.csv"' in html
    for name in ("station_id", "status", "from", "to", "email"):
        assert f'name="{name}"' in html, name
    assert 'aria-sort="descending"' in html


async def test_users_page_tells_operators_they_only_look_and_gives_admins_an_actions_column(
    client: ApiClient, operator: Any, make_user: Any
) -> None:
    await client.sign_in(operator)
    html = await page(client, "/operator/users")
    assert 'id="us-readonly"' in html and 'data-role="operator"' in html
    assert "Actions" not in html
    admin = await make_user(Role.ADMIN)
    await client.sign_in(admin)
    html = await page(client, "/operator/users")
    assert 'id="us-readonly"' not in html and 'data-role="admin"' in html
    assert f'data-user-id="{admin.id}"' in html and "Actions" in html


async def test_insights_page_has_a_table_for_each_chart(client: ApiClient, operator: Any) -> None:
    await client.sign_in(operator)
    html = await page(client, "/operator/insights")
    for marker in ('id="in-days-chart"', 'id="in-days-table"', 'id="in-heat-chart"', 'id="in-heat-table"'):
        assert marker in html
    assert html.count("<details") == 2


async def test_city_filter_offers_no_city_whose_only_station_is_inactive(client: ApiClient) -> None:
    await make_station(name="Open Hub", city="Pune")
    await make_station(name="Retired Hub", city="Nagpur", status=StationStatus.INACTIVE)
    html = await (await client.get("/")).get_data(as_text=True)
    assert '<option value="Pune">' in html
    assert "Nagpur" not in html
