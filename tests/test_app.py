"""The service starts, reads through the ORM from a route, and speaks problem JSON for every error."""

from __future__ import annotations

import pytest

from app import accounts
from tests.conftest import ApiClient


async def test_route_reads_through_the_orm_under_the_running_app(client: ApiClient, driver) -> None:
    await client.sign_in(driver)
    response = await client.get("/api/auth/me")
    assert response.status_code == 200
    assert (await response.get_json())["email"] == driver.email


async def test_health_and_readiness_answer(client: ApiClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    body = await ready.get_json()
    assert ready.status_code == 200, body
    assert body["checks"]["database"] == "ok"


async def test_openapi_document_and_docs_are_served(client: ApiClient) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    assert spec["info"]["title"] == "Chargeslot API"
    assert "/api/auth/login" in spec["paths"]
    assert (await client.get("/docs")).status_code == 200


async def test_unknown_route_is_problem_json_404(client: ApiClient) -> None:
    response = await client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    body = await response.get_json()
    assert body == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "code": "not_found",
        "detail": body["detail"],
    }


async def test_wrong_method_is_problem_json_405(client: ApiClient) -> None:
    response = await client.delete("/api/auth/me")
    assert response.status_code == 405
    assert (await response.get_json())["code"] == "method_not_allowed"


async def test_invalid_body_is_422_with_field_errors(client: ApiClient) -> None:
    response = await client.post("/api/auth/login", json={"email": "someone@example.com"})
    assert response.status_code == 422
    body = await response.get_json()
    assert body["code"] == "validation_error"
    assert ["body", "password"] in [e["loc"] for e in body["errors"]]


async def test_malformed_json_is_422(client: ApiClient) -> None:
    response = await client.post("/api/auth/login", data=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert (await response.get_json())["code"] == "validation_error"


async def test_body_that_is_not_utf8_is_422_not_500(client: ApiClient) -> None:
    response = await client.post("/api/auth/login", data=b"\xee\x8f{", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert (await response.get_json())["code"] == "validation_error"


async def test_openapi_documents_errors_as_problem_json_and_ids_within_column_range(client: ApiClient) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    operation = spec["paths"]["/api/bookings/{booking_id}"]["get"]
    assert list(operation["responses"]["404"]["content"]) == ["application/problem+json"]
    assert list(operation["responses"]["200"]["content"]) == ["application/json"]
    assert operation["parameters"][0]["schema"] == {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}


async def test_internal_error_is_500_without_internals(client: ApiClient, monkeypatch: pytest.MonkeyPatch) -> None:
    async def explode(*args: object) -> None:
        raise RuntimeError("secret internal detail from SELECT * FROM users")

    monkeypatch.setattr(accounts, "authenticate", explode)
    response = await client.post("/api/auth/login", json={"email": "a@example.com", "password": "whatever-pass"})
    assert response.status_code == 500
    body = await response.get_json()
    assert body["code"] == "internal_error"
    assert "SELECT" not in body["detail"] and "secret" not in body["detail"]
    assert response.headers["X-Request-ID"] in body["detail"]


async def test_responses_carry_security_headers(client: ApiClient) -> None:
    response = await client.get("/healthz")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"]
