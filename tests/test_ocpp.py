"""The charger link over OCPP 1.6J (DESIGN §14), with a real protocol peer: a charge point made
with the ``ocpp`` package's ChargePoint over a ``websockets`` client (``app.simulator``), talking
to the app served by Hypercorn."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import websockets
from quart import Quart
from websockets.exceptions import ConnectionClosed, InvalidStatus

from app.models import Booking, BookingStatus, ChargePoint, ChargingSession, Role, User
from app.simulator import basic_auth
from app.state import state
from tests.conftest import DEFAULT_NOW, ApiClient, Backend
from tests.helpers import (
    ROOT,
    booted_charger,
    eventually,
    insert_booking,
    linked_station,
    next_event,
    served,
    simulated_charger,
    start_process,
    stop_process,
)


@pytest.fixture
async def server(app: Quart, db: Backend) -> AsyncIterator[str]:
    async with served(app) as address:
        yield address


async def _refused(server: str, identity: str, headers: dict[str, str], subprotocols: list[str]) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(
            f"ws://{server}/ocpp/{identity}",
            subprotocols=subprotocols,
            additional_headers=headers,  # type: ignore[arg-type]
        ):
            pass
    response = refused.value.response
    if response.status_code == 401:
        # A charge point is told which credentials to send (RFC 7235).
        assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    return response.status_code


async def test_handshake_is_refused_without_the_subprotocol_or_with_wrong_credentials(server: str) -> None:
    _, _, key = await linked_station()
    right = {"Authorization": basic_auth("CP-1", key)}
    assert await _refused(server, "CP-1", right, []) == 400
    assert await _refused(server, "CP-1", {"Authorization": basic_auth("CP-1", key + "x")}, ["ocpp1.6"]) == 401
    assert await _refused(server, "CP-404", {"Authorization": basic_auth("CP-404", key)}, ["ocpp1.6"]) == 401
    assert await _refused(server, "CP-1", {}, ["ocpp1.6"]) == 401
    async with simulated_charger(server, key) as point:
        assert point._connection.subprotocol == "ocpp1.6"


async def test_boot_and_heartbeat_show_the_charge_point_online(server: str, operator_client: ApiClient) -> None:
    station, _, key = await linked_station()
    async with simulated_charger(server, key) as point:
        answer = await point.boot()
        assert answer.status == "Accepted" and answer.interval == 300
        heartbeat = await point.heartbeat()
        assert heartbeat.current_time.startswith(DEFAULT_NOW.strftime("%Y-%m-%dT%H:%M"))
        listed = await (await operator_client.get(f"/api/stations/{station.id}/charge-points")).get_json()
        (item,) = listed["items"]
        assert item["online"] is True and item["vendor"] == "Chargeslot" and item["model"] == "Simulator"
        assert item["last_boot_at"] is not None
    row = await ChargePoint.get(identity="CP-1")
    await eventually(lambda: ChargePoint.filter(identity="CP-1", online=False).exists(), what="offline on close")
    assert row.last_seen_at is not None


async def test_a_faulted_connector_is_not_available_now_and_says_so_live(server: str, app: Quart, client) -> None:
    async with booted_charger(server) as (station, point):
        await point.status(1, "Available")
        detail = await (await client.get(f"/api/stations/{station.id}")).get_json()
        first = detail["chargers"][0]
        assert (first["available_now"], first["live_status"], first["online"]) == (True, "Available", True)
        with state(app).bus.subscribe(f"station:{station.id}") as events:
            await point.status(1, "Faulted", error_code="GroundFailure")
            event = await next_event(events, "availability")
        assert event["chargers"][0]["available_now"] is False and event["chargers"][0]["live_status"] == "Faulted"
        assert event["chargers"][1]["available_now"] is True  # not linked: its bookings alone decide
        detail = await (await client.get(f"/api/stations/{station.id}")).get_json()
        assert detail["chargers"][0]["available_now"] is False and detail["available_chargers"] == 1


async def test_only_the_booked_driver_may_start_on_a_connector_booked_now(server: str, make_user) -> None:
    station, _, key = await linked_station()
    booked: User = await make_user(Role.DRIVER)
    walk_in: User = await make_user(Role.DRIVER)
    await insert_booking(station, start=DEFAULT_NOW - timedelta(minutes=5), status=BookingStatus.PAID, user=booked)
    async with simulated_charger(server, key) as point:
        await point.boot()
        assert await point.authorize(walk_in.id_tag) == "Accepted"
        assert await point.authorize("NOBODY") == "Invalid"
        assert (await point.start_transaction(1, walk_in.id_tag))[1] == "Invalid"
        transaction_id, status = await point.start_transaction(1, booked.id_tag)
        assert status == "Accepted" and transaction_id > 0
    session = await ChargingSession.get(id=transaction_id)
    assert session.id_tag == booked.id_tag and session.booking_id is not None  # type: ignore[attr-defined]


async def test_an_unbooked_connector_takes_any_active_driver_and_is_then_not_free(
    server: str, make_user, client
) -> None:
    station, _, key = await linked_station()
    walk_in: User = await make_user(Role.DRIVER)
    blocked: User = await make_user(Role.DRIVER, is_active=False)
    async with simulated_charger(server, key) as point:
        await point.boot()
        assert await point.authorize(blocked.id_tag) == "Blocked"
        assert (await point.start_transaction(1, walk_in.id_tag))[1] == "Accepted"
        detail = await (await client.get(f"/api/stations/{station.id}")).get_json()
        assert detail["chargers"][0]["available_now"] is False
        assert detail["chargers"][0]["session"]["energy_kwh"] == 0


async def test_meter_values_reach_the_booked_driver_alone_and_the_stop_records_energy(
    server: str, app: Quart, make_user
) -> None:
    station, _, key = await linked_station()
    driver: User = await make_user(Role.DRIVER)
    other: User = await make_user(Role.DRIVER)
    booking = await insert_booking(
        station, start=DEFAULT_NOW - timedelta(minutes=1), status=BookingStatus.PAID, user=driver
    )
    bus = state(app).bus
    with bus.subscribe(f"driver:{driver.id}") as mine, bus.subscribe(f"driver:{other.id}") as theirs:
        async with simulated_charger(server, key) as point:
            await point.boot()
            await point.start_transaction(1, driver.id_tag)
            started = await next_event(mine, "session")
            assert started["booking_id"] == booking.id and started["energy_kwh"] == 0
            await point.meter(1, seconds=600)  # 10 minutes at 11 kW
            event = await next_event(mine, "session")
            assert (event["energy_kwh"], event["power_kw"]) == (1.833, 11.0)
            await point.stop_transaction(1)
            stopped = await next_event(mine, "session")
            assert stopped["stopped_at"] is not None and stopped["power_kw"] == 0
        assert theirs.queue.empty()
    assert (await Booking.get(id=booking.id)).energy_wh == 1833


async def test_meter_values_keep_the_station_screens_figures_of_the_running_session_current(
    server: str, app: Quart, client, make_user
) -> None:
    walk_in: User = await make_user(Role.DRIVER)
    async with booted_charger(server) as (station, point):
        await point.status(1, "Available")
        with state(app).bus.subscribe(f"station:{station.id}") as events:
            await point.start_transaction(1, walk_in.id_tag)
            while (await next_event(events, "availability"))["chargers"][0]["live_status"] != "Charging":
                pass
            await point.meter(1, seconds=600)  # 10 minutes at 11 kW
            event = await next_event(events, "availability")
        session = event["chargers"][0]["session"]
        assert (session["energy_kwh"], session["power_kw"]) == (1.833, 11.0)
        detail = await (await client.get(f"/api/stations/{station.id}")).get_json()
        assert detail["chargers"][0]["session"]["energy_kwh"] == 1.833


async def test_a_second_connection_of_the_same_identity_replaces_the_first(server: str, app: Quart) -> None:
    _, _, key = await linked_station()
    async with simulated_charger(server, key) as first:
        await first.boot()
        async with simulated_charger(server, key) as second:
            await second.boot()
            with pytest.raises(ConnectionClosed):  # the server closed the old socket
                await asyncio.wait_for(first.listening, 5)
            assert state(app).chargers.held["CP-1"].id == "CP-1"
            assert await ChargePoint.filter(identity="CP-1", online=True).exists()


async def test_the_simulate_charger_command_boots_and_reports_its_connectors(server: str, client, tmp_path) -> None:
    station, _, key = await linked_station(connectors=2)
    url = f"ws://{server}/ocpp/CP-1"
    log = tmp_path / "simulator.log"
    command = [sys.executable, "-m", "app", "simulate-charger", "--url", url, "--key", key, "--connectors", "2"]
    process = start_process(command, dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1"), log)
    try:

        async def both_available() -> bool:
            detail = await (await client.get(f"/api/stations/{station.id}")).get_json()
            return [c["live_status"] for c in detail["chargers"]] == ["Available", "Available"]

        await eventually(both_available, timeout=20, what="the simulator's connectors reported")
        assert await ChargePoint.filter(identity="CP-1", online=True, model="Simulator").exists()
    finally:
        stop_process(process)
    assert "BootNotification: Accepted" in log.read_text()
