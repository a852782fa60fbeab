"""Requests nobody sends by accident: odd spellings, extreme shapes and values of the wrong type.

Each is answered as the contract says (a 4xx problem a client can act on), never with a 500 and
never by quietly reading it as something else.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ApiClient
from tests.test_stations_api import add_station


async def problem_of(response: Any, status: int, code: str) -> dict[str, Any]:
    body: dict[str, Any] = await response.get_json()
    assert (response.status_code, response.content_type) == (status, "application/problem+json"), body
    assert body["code"] == code
    return body


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
