"""Operators find accounts; admins lock one out, and it takes effect at once."""

from __future__ import annotations

from typing import Any

import pytest

from app.hours import HoursSpec
from app.models import Booking, BookingStatus, Role, User
from tests.conftest import ApiClient
from tests.helpers import make_station


@pytest.fixture
async def admin_client(app: Any, make_user: Any) -> ApiClient:
    client = ApiClient(app)
    await client.sign_in(await make_user(Role.ADMIN))
    return client


async def hold_a_charger(client: ApiClient) -> int:
    station = await make_station(timezone="Asia/Kolkata", hours=HoursSpec(twentyfourseven=True), chargers=1)
    booked = await client.post(
        "/api/bookings", json={"station_id": station.id, "slot_time": "2026-12-02T12:00:00", "duration_minutes": 60}
    )
    assert booked.status_code == 200, await booked.get_json()
    return int((await booked.get_json())["booking_id"])


async def test_deactivating_a_driver_ends_their_open_session_and_frees_their_holds(
    admin_client: ApiClient, driver_client: ApiClient, driver: User
) -> None:
    booking_id = await hold_a_charger(driver_client)
    changed = await admin_client.patch(f"/api/users/{driver.id}", json={"is_active": False})
    assert changed.status_code == 200
    assert (await changed.get_json())["is_active"] is False
    assert (await driver_client.get("/api/auth/me")).status_code == 401
    assert (await Booking.get(id=booking_id)).status == BookingStatus.EXPIRED
    refused = await driver_client.post(
        "/api/auth/login", json={"email": driver.email, "password": "correct-horse-battery"}
    )
    assert (refused.status_code, (await refused.get_json())["code"]) == (403, "user_inactive")


async def test_a_reactivated_driver_can_sign_in_again(admin_client: ApiClient, client: ApiClient, driver: User) -> None:
    assert (await admin_client.patch(f"/api/users/{driver.id}", json={"is_active": False})).status_code == 200
    assert (await admin_client.patch(f"/api/users/{driver.id}", json={"is_active": True})).status_code == 200
    await client.sign_in(driver)
    assert (await client.get("/api/auth/me")).status_code == 200


@pytest.mark.parametrize("change", [{"is_active": False}, {"role": "operator"}, {"role": "driver"}])
async def test_an_admin_cannot_lock_themselves_out(app: Any, make_user: Any, change: dict[str, Any]) -> None:
    admin = await make_user(Role.ADMIN)
    client = ApiClient(app)
    await client.sign_in(admin)
    refused = await client.patch(f"/api/users/{admin.id}", json=change)
    assert (refused.status_code, (await refused.get_json())["code"]) == (403, "forbidden")
    assert (await User.get(id=admin.id)).role == Role.ADMIN and (await User.get(id=admin.id)).is_active


async def test_an_admin_changes_a_role(admin_client: ApiClient, driver: User) -> None:
    changed = await admin_client.patch(f"/api/users/{driver.id}", json={"role": "operator"})
    assert (await changed.get_json())["role"] == "operator"
    assert (await User.get(id=driver.id)).role == Role.OPERATOR


async def test_operators_may_look_but_not_change_and_drivers_may_do_neither(
    operator_client: ApiClient, driver_client: ApiClient, driver: User
) -> None:
    assert (await operator_client.get("/api/users")).status_code == 200
    for client, method, path in (
        (operator_client, "patch", f"/api/users/{driver.id}"),
        (driver_client, "get", "/api/users"),
        (driver_client, "patch", f"/api/users/{driver.id}"),
    ):
        response = await getattr(client, method)(path, json={"is_active": False})
        assert (response.status_code, (await response.get_json())["code"]) == (403, "forbidden")
    assert (await User.get(id=driver.id)).is_active


async def test_users_are_found_by_part_of_email_or_username_role_and_state(
    admin_client: ApiClient, make_user: Any
) -> None:
    await make_user(Role.DRIVER, email="asha@fleet.example")
    await make_user(Role.DRIVER, is_active=False)
    await make_user(Role.OPERATOR)

    async def emails(query: str) -> tuple[int, list[str]]:
        body = await (await admin_client.get(f"/api/users?{query}")).get_json()
        return body["total"], [item["email"] for item in body["items"]]

    assert await emails("q=FLEET") == (1, ["asha@fleet.example"])
    assert (await emails("role=operator"))[0] == 1
    assert (await emails("is_active=false"))[0] == 1
    total, page = await emails("limit=2&offset=1")
    assert (total, len(page)) == (4, 2)


async def test_an_empty_change_or_unknown_user_is_refused(admin_client: ApiClient) -> None:
    empty = await admin_client.patch("/api/users/1", json={})
    assert empty.status_code == 422
    unknown = await admin_client.patch("/api/users/99999", json={"is_active": False})
    assert unknown.status_code == 404
