"""Charge points as operators manage them, and every driver's idTag (DESIGN §14)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from app import charge_points
from app.cli import build_parser
from app.models import Charger
from tests.conftest import ApiClient, Backend
from tests.helpers import ROOT, make_station, ok, problem

_MIGRATE_TO = """
import asyncio, sys
from tortoise import Tortoise
from tortoise.migrations.api import migrate
from app.db import tortoise_config

async def main():
    try:
        await migrate(config=tortoise_config(sys.argv[1]), target=sys.argv[2] if len(sys.argv) > 2 else None)
    finally:
        await Tortoise.close_connections()

asyncio.run(main())
"""


def _migrate(url: str, *target: str) -> None:
    subprocess.run([sys.executable, "-c", _MIGRATE_TO, url, *target], cwd=ROOT, check=True, timeout=120)


def test_migration_gives_existing_users_each_their_own_id_tag(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _migrate(f"sqlite://{path}", "models.0004_booking_cancel_reason")
    with sqlite3.connect(path) as old:
        for n in range(3):
            old.execute(
                "INSERT INTO users (email, username, password_hash, is_active, role, created_at)"
                " VALUES (?, ?, 'x', 1, 'driver', '2026-01-01 00:00:00')",
                (f"d{n}@example.com", f"d{n}"),
            )
    _migrate(f"sqlite://{path}")
    with sqlite3.connect(path) as new:
        tags = [row[0] for row in new.execute("SELECT id_tag FROM users")]
    assert len(tags) == 3 and len(set(tags)) == 3
    assert all(tag and len(tag) <= 20 and tag.isalnum() for tag in tags)


async def test_a_new_driver_has_an_id_tag_in_me(client: ApiClient, db: Backend) -> None:
    body = {"email": "new@example.com", "username": "newdriver", "password": "a quiet evening drive"}
    created = await client.post("/api/auth/register", json=body)
    assert created.status_code == 201, await created.get_json()
    me = await (await client.get("/api/auth/me")).get_json()
    assert me["id_tag"] and len(me["id_tag"]) <= 20
    assert me["id_tag"] == (await created.get_json())["id_tag"]


async def _new_charge_point(client: ApiClient, station_id: int, identity: str = "CP-1") -> dict[str, Any]:
    response = await client.post(f"/api/stations/{station_id}/charge-points", json={"identity": identity})
    body: dict[str, Any] = await response.get_json()
    assert response.status_code == 201, body
    return body


async def test_operator_creates_a_charge_point_and_sees_its_key_only_once(operator_client: ApiClient) -> None:
    station = await make_station()
    created = await _new_charge_point(operator_client, station.id)
    assert created["identity"] == "CP-1" and len(created["auth_key"]) >= 16
    assert await charge_points.authenticate("CP-1", created["auth_key"]) is not None
    listed = await ok(await operator_client.get(f"/api/stations/{station.id}/charge-points"))
    (item,) = listed["items"]
    assert item["id"] == created["id"] and item["online"] is False and item["connectors"] == []
    assert "auth_key" not in item and created["auth_key"] not in json.dumps(listed)


def test_every_new_key_can_be_given_to_the_simulate_charger_command_as_shown() -> None:
    parser = build_parser()
    for _ in range(500):  # a key starting with "-" would be taken for an option (1 in 64 once)
        key = charge_points.new_auth_key()
        args = parser.parse_args(["simulate-charger", "--url", "ws://127.0.0.1:8000/ocpp/CP-1", "--key", key])
        assert args.key == key and 16 <= len(key) <= 40


async def test_rotating_the_key_makes_the_old_one_useless(operator_client: ApiClient) -> None:
    station = await make_station()
    created = await _new_charge_point(operator_client, station.id)
    rotated = await ok(
        await operator_client.post(f"/api/stations/{station.id}/charge-points/{created['id']}/rotate-key")
    )
    assert rotated["auth_key"] != created["auth_key"]
    assert await charge_points.authenticate("CP-1", created["auth_key"]) is None
    assert await charge_points.authenticate("CP-1", rotated["auth_key"]) is not None


async def test_a_taken_identity_or_a_bad_one_is_refused(operator_client: ApiClient) -> None:
    station = await make_station()
    await _new_charge_point(operator_client, station.id)
    again = await operator_client.post(f"/api/stations/{station.id}/charge-points", json={"identity": "CP-1"})
    await problem(again, 409, "charge_point_exists")
    bad = await operator_client.post(f"/api/stations/{station.id}/charge-points", json={"identity": "a/b"})
    await problem(bad, 422, "validation_error")
    missing = await operator_client.post("/api/stations/999/charge-points", json={"identity": "CP-2"})
    await problem(missing, 404, "not_found")


async def test_drivers_cannot_manage_charge_points(driver_client: ApiClient) -> None:
    station = await make_station()
    response = await driver_client.post(f"/api/stations/{station.id}/charge-points", json={"identity": "CP-9"})
    await problem(response, 403, "forbidden")


async def test_operator_links_chargers_to_connectors_once_each(operator_client: ApiClient) -> None:
    station = await make_station(chargers=2)
    cp = await _new_charge_point(operator_client, station.id)
    first, second = await Charger.filter(station_id=station.id).order_by("charger_number")
    path = f"/api/stations/{station.id}/chargers"
    await ok(await operator_client.patch(f"{path}/{first.id}", json={"charge_point_id": cp["id"], "connector_id": 1}))
    taken = await operator_client.patch(f"{path}/{second.id}", json={"charge_point_id": cp["id"], "connector_id": 1})
    await problem(taken, 409, "connector_taken")
    half = await operator_client.patch(f"{path}/{second.id}", json={"charge_point_id": cp["id"]})
    await problem(half, 422, "validation_error")
    elsewhere = await make_station("Elsewhere")
    foreign = await _new_charge_point(operator_client, elsewhere.id, "CP-X")
    wrong = await operator_client.patch(
        f"{path}/{second.id}", json={"charge_point_id": foreign["id"], "connector_id": 2}
    )
    await problem(wrong, 422, "validation_error")
    listed = await ok(await operator_client.get(f"/api/stations/{station.id}/charge-points"))
    assert [(c["connector_id"], c["charger_id"]) for c in listed["items"][0]["connectors"]] == [(1, first.id)]
