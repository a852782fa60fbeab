"""Requests nobody sends by accident: odd spellings, extreme shapes and values of the wrong type,
and pages of another origin riding on a visitor's browser.

Each is answered as the contract says (a 4xx problem a client can act on), never with a 500 and
never by quietly reading it as something else.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from quart import Quart
from quart.testing import WebsocketResponseError

from app import create_app
from app.clock import FrozenClock
from app.models import User
from app.state import state
from tests.conftest import DEFAULT_NOW, DEFAULT_PASSWORD, ApiClient, Backend
from tests.helpers import NEW_STATION, add_station, book
from tests.helpers import problem as problem_of


def error_locs(problem: dict[str, Any]) -> list[list[Any]]:
    return [error["loc"] for error in problem["errors"]]


# --- ids in paths -------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["00001", "01", "\uff11", "+1", "1.0"])
async def test_an_id_is_spelled_one_way_only(client: ApiClient, spelling: str) -> None:
    station_id = await add_station()
    assert station_id == 1
    assert (await client.get("/api/stations/1")).status_code == 200
    await problem_of(await client.get(f"/api/stations/{spelling}"), 404, "not_found")
    await problem_of(await client.get(f"/stations/{spelling}"), 404, "not_found")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("station_id", ["0", str(2**31), "9999999999"])
async def test_a_path_no_id_route_takes_is_unknown_for_every_method(
    operator_client: ApiClient, method: str, station_id: str
) -> None:
    for suffix in ("", "/hours", "/chargers"):
        response = await operator_client.request(method, f"/api/stations/{station_id}{suffix}", json={})
        await problem_of(response, 404, "not_found")


async def test_a_known_path_with_another_method_is_still_405(operator_client: ApiClient) -> None:
    response = await operator_client.delete("/api/stations/1")
    await problem_of(response, 405, "method_not_allowed")
    assert "PATCH" in response.headers["Allow"]


# --- deeply nested JSON -------------------------------------------------------------------------

#: About 2 KB, and a thousand levels: past the JSON parser's recursion limit.
DEEP_ARRAY = b"[" * 1000 + b"]" * 1000


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/auth/login", DEEP_ARRAY),
        ("/api/auth/register", b'{"email": ' + DEEP_ARRAY + b"}"),
        ("/api/bookings", b'{"station_id": 1, "slot_time": ' + b'{"a": ' * 40 + b"1" + b"}" * 41),
        ("/api/payments/process", b"[" * 33 + b"]" * 33),
    ],
    ids=["array", "in-object", "objects", "one-too-deep"],
)
async def test_json_nested_past_the_limit_is_422_before_it_is_parsed(client: ApiClient, path: str, body: bytes) -> None:
    response = await client.post(path, data=body, headers={"Content-Type": "application/json"})
    problem = await problem_of(response, 422, "validation_error")
    assert problem["errors"] == [{"loc": ["body"], "msg": "must not nest arrays and objects more than 32 levels deep"}]


async def test_json_nested_to_the_limit_and_brackets_inside_strings_are_fine(client: ApiClient) -> None:
    at_limit = b"[" * 32 + b"]" * 32
    response = await client.post("/api/auth/login", data=at_limit, headers={"Content-Type": "application/json"})
    problem = await problem_of(response, 422, "validation_error")
    assert "levels deep" not in problem["errors"][0]["msg"], "parsed, then refused as the wrong shape"

    bracketed_text = {"email": "[" * 40 + '\\"{' * 40 + "@example.com", "password": "]" * 100}
    response = await client.post("/api/auth/login", json=bracketed_text)
    assert response.status_code == 401, await response.get_data(as_text=True)


# --- static files -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a" * 256, "é" * 200, "a/" * 2100 + "x.css"], ids=["long", "long-utf8", "long-path"])
async def test_a_static_name_too_long_for_the_filesystem_is_404_like_any_missing_file(
    client: ApiClient, name: str
) -> None:
    missing = await client.get("/static/no-such-file.css", headers={"Accept": "text/html"})
    too_long = await client.get(f"/static/{name}", headers={"Accept": "text/html"})
    assert (too_long.status_code, too_long.content_type) == (404, missing.content_type)
    assert "find that page" in await too_long.get_data(as_text=True)


# --- CSRF header --------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["é" * 64, "\u00ff", "\x80abc"], ids=["utf8", "latin1", "c1-control"])
async def test_a_non_ascii_csrf_token_is_refused_as_any_wrong_token(driver_client: ApiClient, token: str) -> None:
    response = await driver_client.post("/api/auth/logout", headers={"X-CSRF-Token": token.encode().decode("latin-1")})
    await problem_of(response, 403, "csrf_failed")
    assert (await driver_client.get("/api/auth/me")).status_code == 200, "still signed in"


# --- values of the wrong type -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("latitude", True),
        ("longitude", False),
        ("latitude", "18.969"),
        ("price_per_hour", True),
        ("price_per_hour", 150.5),
        ("price_per_hour", ["150"]),
    ],
)
async def test_a_station_field_of_the_wrong_json_type_is_422(
    operator_client: ApiClient, field: str, value: object
) -> None:
    response = await operator_client.post("/api/stations", json={**NEW_STATION, field: value})
    assert error_locs(await problem_of(response, 422, "validation_error")) == [["body", field]]
    assert (await (await operator_client.get("/api/stations")).get_json())["total"] == 0


async def test_wrong_json_types_are_422_in_patches_chargers_and_exceptions(operator_client: ApiClient) -> None:
    created = await operator_client.post("/api/stations", json={**NEW_STATION, "price_per_hour": 150})
    assert created.status_code == 201, "a whole number is still a price"
    station = await created.get_json()
    assert station["price_per_hour"] == "150.00"
    path = f"/api/stations/{station['id']}"

    patch = await operator_client.patch(path, json={"latitude": True, "price_per_hour": False})
    problem = await problem_of(patch, 422, "validation_error")
    assert error_locs(problem) == [["body", "latitude"], ["body", "price_per_hour"]]
    charger = await operator_client.post(f"{path}/chargers", json={"charger_type": "CCS2", "power_kw": True})
    assert error_locs(await problem_of(charger, 422, "validation_error")) == [["body", "power_kw"]]
    timestamp = {"kind": "closing", "period_begin": 1796000000, "period_end": "2026-12-24T00:00:00Z"}
    exception = await operator_client.post(f"{path}/exceptions", json=timestamp)
    assert error_locs(await problem_of(exception, 422, "validation_error")) == [["body", "period_begin"]]
    week_date = {"period_begin": "2026-W52-4T00:00:00+05:30", "period_end": "2026-12-25T00:00:00+05:30"}
    hours = await operator_client.put(
        f"{path}/hours", json={"twentyfourseven": True, "exceptional_closings": [week_date]}
    )
    locs = error_locs(await problem_of(hours, 422, "validation_error"))
    assert locs == [["body", "exceptional_closings", 0, "period_begin"]]

    unchanged = await (await operator_client.get(path)).get_json()
    assert (unchanged["latitude"], unchanged["price_per_hour"], len(unchanged["chargers"])) == (18.969, "150.00", 2)


async def test_hours_that_do_not_say_when_the_station_opens_are_422(operator_client: ApiClient) -> None:
    silent = await operator_client.post("/api/stations", json={**NEW_STATION, "hours": {}})
    assert error_locs(await problem_of(silent, 422, "validation_error")) == [["body", "hours"]]

    station = await (await operator_client.post("/api/stations", json=NEW_STATION)).get_json()
    path = f"/api/stations/{station['id']}"
    for sent in ({}, {"twentyfourseven": False}, {"exceptional_closings": []}):
        replaced = await operator_client.put(f"{path}/hours", json=sent)
        assert error_locs(await problem_of(replaced, 422, "validation_error")) == [["body"]]
        patched = await operator_client.patch(path, json={"hours": sent})
        assert error_locs(await problem_of(patched, 422, "validation_error")) == [["body", "hours"]]
    assert (await (await operator_client.get(path)).get_json())["is_open"] is True, "hours unchanged"

    never = await operator_client.put(f"{path}/hours", json={"twentyfourseven": False, "regular_hours": []})
    assert (never.status_code, (await never.get_json())["is_open"]) == (200, False), "said explicitly, it is kept"


# --- slot times ---------------------------------------------------------------------------------


MALFORMED_SLOT_TIMES = [
    "2026-12-02T12:00:00\x00",
    "2026-W49-3T12:00",
    "2026-336T12:00",
    "2026-12-02T12:00:00 ",
    "20261202",
]


@pytest.mark.parametrize("slot_time", MALFORMED_SLOT_TIMES)
async def test_a_slot_time_in_another_spelling_is_422_when_booking(driver_client: ApiClient, slot_time: str) -> None:
    station_id = await add_station()
    response = await book(driver_client, station_id, slot_time)
    assert error_locs(await problem_of(response, 422, "validation_error")) == [["body", "slot_time"]]


@pytest.mark.parametrize("slot_time", MALFORMED_SLOT_TIMES)
async def test_a_slot_time_in_another_spelling_is_422_when_asking_for_free_chargers(
    client: ApiClient, slot_time: str
) -> None:
    station_id = await add_station()
    response = await client.get(f"/api/stations/{station_id}/chargers/available", query_string={"slot_time": slot_time})
    assert error_locs(await problem_of(response, 422, "validation_error")) == [["query", "slot_time"]]


# --- HTTPS: HSTS and the scheme of an origin -----------------------------------------------------

HSTS = "max-age=31536000; includeSubDomains"
SIGN_IN_PATH = "/api/auth/login"


@pytest.fixture
async def https_app(backend: Backend, db: Backend) -> AsyncIterator[Quart]:
    """The site with COOKIE_SECURE on, i.e. served over HTTPS (here reached over plain HTTP, as behind
    a proxy that ends TLS). It shares the running app's database and is never started itself."""
    secure = create_app(replace(backend.settings, cookie_secure=True), clock=FrozenClock(DEFAULT_NOW))
    yield secure
    await state(secure).throttle.close()


async def test_every_response_of_an_https_site_carries_hsts(https_app: Quart, client: ApiClient) -> None:
    station_id = await add_station()
    browser = https_app.test_client()
    status = f"/api/stations/{station_id}/status"
    responses = [
        await browser.get("/healthz"),
        await browser.get(status),  # the route; the next one is answered by the fast status lane
        await browser.get(status),
        await browser.get("/static/favicon.svg"),
        await browser.get("/api/nothing-here"),
        await browser.delete("/api/auth/me"),
        await browser.get("/"),
    ]
    assert [response.headers.get("Strict-Transport-Security") for response in responses] == [HSTS] * len(responses)
    assert "Strict-Transport-Security" not in (await client.get("/healthz")).headers, "not over plain-http development"


@pytest.mark.filterwarnings("ignore:Secure cookies will be ignored on insecure requests")
async def test_sign_in_from_the_http_origin_of_an_https_site_is_refused(
    https_app: Quart, client: ApiClient, driver: User
) -> None:
    sign_in = {"email": driver.email, "password": DEFAULT_PASSWORD}
    behind_proxy = https_app.test_client()
    plain = await behind_proxy.post(SIGN_IN_PATH, json=sign_in, headers={"Origin": "http://localhost"})
    await problem_of(plain, 403, "csrf_failed")
    direct = await client.post(SIGN_IN_PATH, json=sign_in, headers={"Origin": "http://localhost"}, scheme="https")
    await problem_of(direct, 403, "csrf_failed")

    secure = await behind_proxy.post(SIGN_IN_PATH, json=sign_in, headers={"Origin": "https://localhost"})
    assert secure.status_code == 200, await secure.get_data(as_text=True)


async def test_a_live_connection_from_the_http_origin_of_an_https_site_is_refused(app: Quart, db: Backend) -> None:
    station_id = await add_station()
    browser = app.test_client()
    with pytest.raises(WebsocketResponseError) as refused:
        async with browser.websocket(
            f"/ws/stations/{station_id}", scheme="wss", headers={"Origin": "http://localhost"}
        ) as connection:
            await connection.receive()
    assert refused.value.response.status_code == 403

    same_origin = {"Origin": "https://localhost"}
    async with browser.websocket(f"/ws/stations/{station_id}", scheme="wss", headers=same_origin) as connection:
        assert json.loads(await connection.receive())["type"] == "snapshot"
