"""A charge point in software, for trying the charger link without hardware (and for the tests).

``chargeslot simulate-charger --url ws://HOST:PORT/ocpp/ID --key KEY [--connectors N]`` runs one.
It is built with the same ``ocpp`` package as the central system, over a ``websockets`` client:
it boots, heartbeats at the interval it is told, reports each connector's status, accepts
ReserveNow / CancelReservation / RemoteStart / RemoteStop / ChangeAvailability, and while a
transaction runs sends meter values (energy register and power) every ``meter_seconds``.
Everything it receives is also kept in ``received`` for whoever drives it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.typing import Subprotocol

log = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp1.6"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Connector:
    status: str = "Available"
    reservation: dict[str, Any] | None = None
    transaction_id: int | None = None
    meter_wh: int = 0
    power_w: float = 0.0


@dataclass
class Received:
    """A command the central system sent, by OCPP action name, with its fields (snake_case)."""

    action: str
    fields: dict[str, Any]


class SimulatedChargePoint(ChargePoint):  # type: ignore[misc]
    def __init__(
        self,
        identity: str,
        connection: Any,
        connectors: int = 1,
        power_w: float = 11_000.0,
        say: Callable[[str], None] = print,
    ) -> None:
        super().__init__(identity, connection)
        self.connectors = {n: Connector() for n in range(1, connectors + 1)}
        self.power_w = power_w
        self.say = say
        self.heartbeat_interval = 300
        self.received: asyncio.Queue[Received] = asyncio.Queue()
        #: The receive loop, once ``connected`` started it.
        self.listening: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tasks: set[asyncio.Task[None]] = set()

    def _got(self, action: str, **fields: Any) -> None:
        self.received.put_nowait(Received(action, fields))
        self.say(f"<- {action} {fields}")

    # -- what we send ---------------------------------------------------------------------------

    async def boot(self) -> Any:
        answer = await self.call(
            call.BootNotification(
                charge_point_vendor="Chargeslot", charge_point_model="Simulator", firmware_version="1.0"
            )
        )
        self.heartbeat_interval = answer.interval
        self.say(f"-> BootNotification: {answer.status}, heartbeat every {answer.interval} s")
        return answer

    async def heartbeat(self) -> Any:
        return await self.call(call.Heartbeat())

    async def status(self, connector_id: int, status: str, error_code: str = "NoError") -> None:
        if connector_id in self.connectors:
            self.connectors[connector_id].status = status
        await self.call(call.StatusNotification(connector_id=connector_id, error_code=error_code, status=status))
        self.say(f"-> StatusNotification connector {connector_id}: {status}")

    async def authorize(self, id_tag: str) -> str:
        answer = await self.call(call.Authorize(id_tag=id_tag))
        return str(answer.id_tag_info["status"])

    async def start_transaction(self, connector_id: int, id_tag: str) -> tuple[int, str]:
        connector = self.connectors[connector_id]
        reservation = connector.reservation
        answer = await self.call(
            call.StartTransaction(
                connector_id=connector_id,
                id_tag=id_tag,
                meter_start=connector.meter_wh,
                timestamp=_now(),
                reservation_id=reservation["reservation_id"] if reservation else None,
            )
        )
        status = str(answer.id_tag_info["status"])
        self.say(f"-> StartTransaction connector {connector_id} for {id_tag}: {status}")
        if status == "Accepted":
            connector.transaction_id, connector.reservation = answer.transaction_id, None
            connector.power_w = self.power_w
            await self.status(connector_id, "Charging")
        return answer.transaction_id, status

    async def meter(self, connector_id: int, seconds: float) -> None:
        """Advance the connector's register by ``seconds`` of charging and report it."""
        connector = self.connectors[connector_id]
        connector.meter_wh += round(connector.power_w * seconds / 3600)
        await self.call(
            call.MeterValues(
                connector_id=connector_id,
                transaction_id=connector.transaction_id,
                meter_value=[
                    {
                        "timestamp": _now(),
                        "sampledValue": [
                            {
                                "value": str(connector.meter_wh),
                                "measurand": "Energy.Active.Import.Register",
                                "unit": "Wh",
                            },
                            {"value": str(connector.power_w), "measurand": "Power.Active.Import", "unit": "W"},
                        ],
                    }
                ],
            )
        )
        self.say(f"-> MeterValues connector {connector_id}: {connector.meter_wh} Wh, {connector.power_w:.0f} W")

    async def stop_transaction(self, connector_id: int, reason: str = "Local") -> None:
        connector = self.connectors[connector_id]
        if connector.transaction_id is None:
            return
        transaction_id, connector.transaction_id, connector.power_w = connector.transaction_id, None, 0.0
        await self.call(
            call.StopTransaction(
                meter_stop=connector.meter_wh, timestamp=_now(), transaction_id=transaction_id, reason=reason
            )
        )
        self.say(f"-> StopTransaction {transaction_id} ({reason})")
        await self.status(connector_id, "Available")

    # -- what we answer -------------------------------------------------------------------------

    @on(Action.reserve_now)
    async def on_reserve_now(
        self, connector_id: int, expiry_date: str, id_tag: str, reservation_id: int, **_: Any
    ) -> call_result.ReserveNow:
        self._got(
            "ReserveNow",
            connector_id=connector_id,
            expiry_date=expiry_date,
            id_tag=id_tag,
            reservation_id=reservation_id,
        )
        connector = self.connectors.get(connector_id)
        if connector is None or connector.status in ("Faulted", "Unavailable"):
            return call_result.ReserveNow(status="Unavailable" if connector else "Rejected")
        if connector.transaction_id is not None:
            return call_result.ReserveNow(status="Occupied")
        connector.reservation = {"reservation_id": reservation_id, "id_tag": id_tag, "expiry_date": expiry_date}
        self._later(self.status(connector_id, "Reserved"))
        return call_result.ReserveNow(status="Accepted")

    @on(Action.cancel_reservation)
    async def on_cancel_reservation(self, reservation_id: int) -> call_result.CancelReservation:
        self._got("CancelReservation", reservation_id=reservation_id)
        for number, connector in self.connectors.items():
            if connector.reservation and connector.reservation["reservation_id"] == reservation_id:
                connector.reservation = None
                self._later(self.status(number, "Available"))
                return call_result.CancelReservation(status="Accepted")
        return call_result.CancelReservation(status="Rejected")

    @on(Action.remote_start_transaction)
    async def on_remote_start(
        self, id_tag: str, connector_id: int | None = None, **_: Any
    ) -> call_result.RemoteStartTransaction:
        self._got("RemoteStartTransaction", id_tag=id_tag, connector_id=connector_id)
        number = connector_id or 1
        if number not in self.connectors or self.connectors[number].transaction_id is not None:
            return call_result.RemoteStartTransaction(status="Rejected")
        self._later(self.start_transaction(number, id_tag))
        return call_result.RemoteStartTransaction(status="Accepted")

    @on(Action.remote_stop_transaction)
    async def on_remote_stop(self, transaction_id: int) -> call_result.RemoteStopTransaction:
        self._got("RemoteStopTransaction", transaction_id=transaction_id)
        for number, connector in self.connectors.items():
            if connector.transaction_id == transaction_id:
                self._later(self.stop_transaction(number, "Remote"))
                return call_result.RemoteStopTransaction(status="Accepted")
        return call_result.RemoteStopTransaction(status="Rejected")

    @on(Action.change_availability)
    async def on_change_availability(self, connector_id: int, type: str) -> call_result.ChangeAvailability:
        self._got("ChangeAvailability", connector_id=connector_id, type=type)
        status = "Available" if type == "Operative" else "Unavailable"
        for number in self.connectors if connector_id == 0 else [connector_id]:
            self._later(self.status(number, status))
        return call_result.ChangeAvailability(status="Accepted")

    def _later(self, work: Any) -> None:
        """Send a message of our own after the answer in hand has gone out (a call waits for its
        answer, which the receive loop this handler runs in must be free to read)."""
        task = asyncio.ensure_future(self._after_answer(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _after_answer(self, work: Any) -> None:
        await asyncio.sleep(0)
        try:
            await work
        except Exception as exc:
            self.say(f"!! {exc}")


def basic_auth(identity: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{identity}:{key}".encode()).decode()


@contextlib.asynccontextmanager
async def connected(
    url: str, key: str, connectors: int = 1, say: Callable[[str], None] = print, **kwargs: Any
) -> AsyncIterator[SimulatedChargePoint]:
    """A simulated charge point connected to ``url`` (``ws://host:port/ocpp/ID``), its receive loop
    running, until the block ends."""
    identity = url.rstrip("/").rsplit("/", 1)[-1]
    async with websockets.connect(
        url,
        subprotocols=[Subprotocol(SUBPROTOCOL)],
        additional_headers={"Authorization": basic_auth(identity, key)},
        **kwargs,
    ) as socket:
        point = SimulatedChargePoint(identity, socket, connectors, say=say)
        point.listening = asyncio.ensure_future(point.start())
        try:
            yield point
        finally:
            point.listening.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await point.listening


async def simulate(url: str, key: str, connectors: int = 1, meter_seconds: float = 10.0) -> None:
    """Connect, boot, report every connector Available, then heartbeat and meter until the
    connection ends (or the command is interrupted)."""
    async with connected(url, key, connectors) as point:
        await point.boot()
        for number in point.connectors:
            await point.status(number, "Available")

        async def heartbeats() -> None:
            while True:
                await asyncio.sleep(point.heartbeat_interval)
                await point.heartbeat()

        async def meters() -> None:
            while True:
                await asyncio.sleep(meter_seconds)
                for number, connector in point.connectors.items():
                    if connector.transaction_id is not None:
                        await point.meter(number, meter_seconds)

        background = [asyncio.ensure_future(heartbeats()), asyncio.ensure_future(meters())]
        try:
            await point.listening
        finally:
            for task in background:
                task.cancel()
