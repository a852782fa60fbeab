"""/openapi.json tells a client every status each operation can answer, errors included.

A client generated from the document (or a person reading /docs) must be able to handle every
answer it gets: a status the document omits is a surprise in production.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import ApiClient

#: What each operation can answer (DESIGN §5-§6): its success, then every problem status.
CAN_RETURN: dict[str, set[int]] = {
    "GET /healthz": {200},
    "GET /readyz": {200, 503},
    "GET /metrics": {200, 401},
    "POST /api/auth/register": {201, 403, 409, 422, 429, 503},
    "POST /api/auth/login": {200, 401, 403, 422, 429, 503},
    "POST /api/auth/logout": {200, 403, 503},
    "GET /api/auth/me": {200, 401, 503},
    "GET /api/stations": {200, 401, 403, 422, 503},
    "GET /api/stations/{station_id}": {200, 404, 503},
    "GET /api/stations/{station_id}/status": {200, 404, 503},
    "GET /api/stations/{station_id}/chargers/available": {200, 404, 422, 503},
    "POST /api/stations": {201, 401, 403, 422, 503},
    "PATCH /api/stations/{station_id}": {200, 401, 403, 404, 422, 503},
    "PUT /api/stations/{station_id}/hours": {200, 401, 403, 404, 422, 503},
    "POST /api/stations/{station_id}/exceptions": {200, 201, 401, 403, 404, 422, 503},
    "DELETE /api/stations/{station_id}/exceptions/{exception_id}": {200, 204, 401, 403, 404, 422, 503},
    "POST /api/stations/{station_id}/chargers": {201, 401, 403, 404, 422, 503},
    "PATCH /api/stations/{station_id}/chargers/{charger_id}": {200, 401, 403, 404, 422, 503},
    "POST /api/bookings": {200, 401, 403, 404, 409, 422, 503},
    "GET /api/bookings": {200, 401, 422, 503},
    "GET /api/bookings/{booking_id}": {200, 401, 404, 503},
    "GET /api/bookings/{booking_id}/quote": {200, 401, 404, 503},
    "GET /api/bookings/{booking_id}/calendar.ics": {200, 401, 404, 503},
    "GET /api/me/notifications": {200, 401, 422, 503},
    "POST /api/me/notifications/{notification_id}/read": {200, 401, 403, 404, 503},
    "POST /api/me/notifications/read-all": {200, 401, 403, 503},
    "POST /api/bookings/{booking_id}/cancel": {200, 401, 403, 404, 409, 503},
    "POST /api/payments/process": {200, 400, 401, 402, 403, 404, 409, 422, 503},
    "GET /api/payments": {200, 401, 422, 503},
    "GET /api/payments/{payment_id}": {200, 401, 404, 503},
    "GET /api/operator/bookings": {200, 401, 403, 422, 503},
    "GET /api/operator/bookings.csv": {200, 401, 403, 422, 503},
    "GET /api/operator/insights": {200, 401, 403, 404, 422, 503},
    "GET /api/users": {200, 401, 403, 422, 503},
    "PATCH /api/users/{user_id}": {200, 401, 403, 404, 422, 503},
}


def operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{method.upper()} {path}": op for path, ops in spec["paths"].items() for method, op in ops.items()}


async def test_every_operation_documents_every_status_it_can_answer_with_problem_json_errors(client: ApiClient) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    documented = {name: {int(status) for status in op["responses"]} for name, op in operations(spec).items()}
    assert documented == CAN_RETURN
    for name, operation in operations(spec).items():
        for status, response in operation["responses"].items():
            if int(status) < 400 or name == "GET /readyz":  # readiness answers 503 with its checks
                continue
            schema = response["content"]["application/problem+json"]["schema"]
            assert {"status", "code", "detail"} <= set(schema["required"]), (name, status)
            assert response["description"], (name, status)


async def test_removing_an_exception_documents_no_content_and_its_errors(client: ApiClient) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    responses = spec["paths"]["/api/stations/{station_id}/exceptions/{exception_id}"]["delete"]["responses"]
    assert "content" not in responses["204"]
    assert "csrf_failed" in responses["403"]["description"] and "forbidden" in responses["403"]["description"]
    assert list(responses["404"]["content"]) == ["application/problem+json"]


async def test_signed_in_operations_name_the_session_cookie_and_the_roles_they_need(client: ApiClient) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    assert spec["components"]["securitySchemes"]["session"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "chargeslot_session",
    }
    ops = operations(spec)
    assert ops["POST /api/stations"]["security"] == [{"session": ["operator", "admin"]}]
    assert ops["GET /api/bookings"]["security"] == [{"session": []}]
    assert "security" not in ops["GET /api/stations"]
