"""Issue 14's promise on PostgreSQL + Redis, with the Procfile's processes: two web processes and a
worker. A simulated charge point (``chargeslot simulate-charger``) is connected to web process A;
the driver uses only web process B. The worker's ReserveNow, the driver's Start and Stop (sent to
B) still reach the charger held by A, and the session's figures reach the driver's /ws/me on B."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import websockets

from app.models import Role, User
from tests.conftest import DEFAULT_PASSWORD
from tests.helpers import Processes, eventually, linked_station, open_until, simulator_process

#: How far ahead the slot starts: the processes are up, so booking and paying take well under this.
LEAD = timedelta(seconds=6)


async def session_event(socket: websockets.ClientConnection, timeout: float) -> dict[str, Any]:
    """The next ``session`` event on the driver's live channel (other kinds skipped)."""
    while (message := json.loads(await asyncio.wait_for(socket.recv(), timeout)))["type"] != "session":
        pass
    return message  # type: ignore[no-any-return]


async def test_a_driver_on_one_web_process_charges_at_a_charger_held_by_another(
    processes: Processes, make_user: Any
) -> None:
    station, _, key = await linked_station(hours=open_until(datetime.now(UTC) + timedelta(hours=2)))
    driver: User = await make_user(Role.DRIVER)
    processes.start("worker", "worker")
    web_a = await processes.web("web-a")
    web_b = await processes.web("web-b")
    await eventually(lambda: "caught up" in processes.log("worker"), 60, "the worker starting")

    log = processes.logs / "simulator.log"
    simulator = simulator_process(web_a.replace("http", "ws") + "/ocpp/CP-1", key, log, meter_seconds=1)
    processes.started.append(simulator)
    await eventually(lambda: "StatusNotification connector 1: Available" in log.read_text(), 20, "the boot")

    async with httpx.AsyncClient(base_url=web_b, timeout=30) as b:
        signed_in = await b.post("/api/auth/login", json={"email": driver.email, "password": DEFAULT_PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        b.headers["X-CSRF-Token"] = b.cookies["csrf_token"]
        slot = (datetime.now(UTC) + LEAD).replace(microsecond=0)
        body = {"station_id": station.id, "slot_time": slot.isoformat(), "duration_minutes": 15}
        booking = (await b.post("/api/bookings", json=body)).json()
        booking_id = booking["booking_id"]
        payment = {"booking_id": booking_id, "payment_method": "UPI", "amount": booking["amount_due"]}
        assert (await b.post("/api/payments/process", json=payment)).status_code == 200

        # The worker plans ReserveNow (the slot starts within RESERVE_LEAD_MINUTES: at once) and
        # web process A, which holds the charger's socket, sends it.
        expiry = (slot + timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%SZ")  # NO_SHOW_MINUTES after the start
        reserve = f"'expiry_date': '{expiry}', 'id_tag': '{driver.id_tag}', 'reservation_id': {booking_id}}}"
        await eventually(lambda: reserve in log.read_text(), 10, "ReserveNow at the charger")

        cookies = "; ".join(f"{name}={value}" for name, value in b.cookies.items())
        async with websockets.connect(
            web_b.replace("http", "ws") + "/ws/me", additional_headers={"Cookie": cookies}, origin=web_b
        ) as me:  # type: ignore[arg-type]
            await eventually(lambda: datetime.now(UTC) >= slot, LEAD.total_seconds() + 5, "the slot starting")
            started = await b.post(f"/api/bookings/{booking_id}/charging/start")
            assert started.json() == {"booking_id": booking_id, "status": "Accepted"}, started.text
            first = await session_event(me, timeout=10)
            assert first["booking_id"] == booking_id and first["stopped_at"] is None
            rising = first
            while rising["energy_kwh"] <= first["energy_kwh"] or rising["power_kw"] != 11.0:
                rising = await session_event(me, timeout=5)
            assert f"<- RemoteStartTransaction {{'id_tag': '{driver.id_tag}', 'connector_id': 1}}" in log.read_text()

            stopped = await b.post(f"/api/bookings/{booking_id}/charging/stop")
            assert stopped.json() == {"booking_id": booking_id, "status": "Accepted"}, stopped.text
            while (last := await session_event(me, timeout=10))["stopped_at"] is None:
                pass
            assert last["power_kw"] == 0 and last["energy_kwh"] >= rising["energy_kwh"]

        metered = [line for line in log.read_text().splitlines() if "-> MeterValues" in line]
        delivered = int(re.search(r"(\d+) Wh", metered[-1]).group(1))  # type: ignore[union-attr]
        detail = (await b.get(f"/api/bookings/{booking_id}")).json()
        assert detail["energy_wh"] == delivered > 0, json.dumps(detail)
        assert detail["energy_wh"] / 1000 == last["energy_kwh"]
        assert "reservation_sent" in [line["event"] for line in detail["history"]]
