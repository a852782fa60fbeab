"""The charger link: OCPP 1.6J sessions held by a web process, and commands that reach them from
any process (DESIGN §14).

``CentralSystem`` is our side of one charge point's socket, built on the ``ocpp`` package's
``ChargePoint`` (framing, JSON schemas, routing): its handlers turn each message into a call of
``app.charging`` and its answer back into an OCPP result. ``ChargerLink`` is per process: the
sessions this process holds, and ``send`` for commands (ReserveNow, RemoteStart, ...).

**Routing.** A socket lives in one web process; a command may start in any process or the worker.
``send`` publishes it on the bus channel ``ocpp:command`` with a correlation id and the sender's
reply channel; the process holding that identity runs it and publishes the answer on
``ocpp:reply:{sender}``. The bus delivers in the publishing process first, so a command for a
socket held here takes the same path. A charger that is not online fails at once
(``ChargerOffline``); one that never answers fails after ``timeout`` seconds (``CommandFailed``).
When a charge point connects, the holding process announces it on ``ocpp:connected``, and any
other process still holding an older socket of that identity closes it: the new one replaces it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from datetime import UTC, datetime
from typing import Any, Protocol

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, RegistrationStatus

from app import charging
from app.bus import Bus
from app.clock import Clock
from app.models import ChargePoint as ChargePointRow

log = logging.getLogger(__name__)

COMMAND_CHANNEL = "ocpp:command"
CONNECTED_CHANNEL = "ocpp:connected"
_REPLY_PREFIX = "ocpp:reply:"
COMMAND_TIMEOUT = 30.0


class ChargerOffline(Exception):
    """The charge point is not connected: the command cannot be delivered."""


class CommandFailed(Exception):
    """The command was sent but not answered in time, or answered with an OCPP error."""


class Connection(Protocol):
    async def recv(self) -> str: ...

    async def send(self, message: str) -> None: ...


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


class CentralSystem(ChargePoint):  # type: ignore[misc]
    """Our side of one charge point's socket."""

    def __init__(self, row: ChargePointRow, connection: Connection, link: ChargerLink) -> None:
        super().__init__(row.identity, connection, response_timeout=link.timeout)
        self.row_id = row.id
        self._link = link
        #: Set when a newer socket of the same identity replaces this one.
        self.replaced = asyncio.Event()

    def _now(self) -> datetime:
        return self._link.clock.now()

    async def route_message(self, raw_msg: str) -> None:
        await charging.heard_from(self.row_id, self._now(), self._link.bus)
        await super().route_message(raw_msg)

    @on(Action.boot_notification)
    async def on_boot(self, **info: Any) -> call_result.BootNotification:
        await charging.booted(self.row_id, self._now(), info)
        return call_result.BootNotification(
            current_time=_iso(self._now()), interval=self._link.heartbeat_seconds, status=RegistrationStatus.accepted
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=_iso(self._now()))

    @on(Action.status_notification)
    async def on_status(self, connector_id: int, status: str, **_: Any) -> call_result.StatusNotification:
        await charging.status_changed(self.row_id, connector_id, status, self._now(), self._link.bus)
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info={"status": await charging.authorize(id_tag)})

    @on(Action.start_transaction)
    async def on_start(
        self, connector_id: int, id_tag: str, meter_start: int, **_: Any
    ) -> call_result.StartTransaction:
        started = await charging.start(self.row_id, connector_id, id_tag, meter_start, self._now(), self._link.bus)
        return call_result.StartTransaction(
            transaction_id=started.transaction_id, id_tag_info={"status": started.status}
        )

    @on(Action.stop_transaction)
    async def on_stop(self, transaction_id: int, meter_stop: int, **extra: Any) -> call_result.StopTransaction:
        await charging.stop(transaction_id, meter_stop, extra.get("reason"), self._now(), self._link.bus)
        return call_result.StopTransaction()

    @on(Action.meter_values)
    async def on_meter_values(
        self, connector_id: int, meter_value: list[dict[str, Any]], transaction_id: int | None = None
    ) -> call_result.MeterValues:
        await charging.metered(self.row_id, connector_id, transaction_id, meter_value, self._now(), self._link.bus)
        return call_result.MeterValues()


class ChargerLink:
    """This process's charge point sockets, and commands to any charge point wherever it is held."""

    def __init__(self, bus: Bus, clock: Clock, heartbeat_seconds: int, timeout: float = COMMAND_TIMEOUT) -> None:
        self.bus = bus
        self.clock = clock
        self.heartbeat_seconds = heartbeat_seconds
        self.timeout = timeout
        self.held: dict[str, CentralSystem] = {}
        self._token = secrets.token_hex(8)
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._running: set[asyncio.Task[None]] = set()
        bus.listen(self._on_message)

    # -- sockets held here --------------------------------------------------------------------------

    async def attach(self, row: ChargePointRow, connection: Connection) -> CentralSystem:
        """A new socket for ``row``: it replaces any older one, here or in another process."""
        old = self.held.get(row.identity)
        if old is not None:
            old.replaced.set()
        session = CentralSystem(row, connection, self)
        self.held[row.identity] = session
        await self.bus.publish(CONNECTED_CHANNEL, {"identity": row.identity, "holder": self._token})
        await charging.heard_from(row.id, self.clock.now(), self.bus)
        return session

    async def detach(self, session: CentralSystem) -> None:
        """The socket closed; the charge point is offline unless a newer socket replaced it."""
        if self.held.get(session.id) is session:
            del self.held[session.id]
            await charging.went_away(session.row_id, self.clock.now(), self.bus)

    # -- commands -----------------------------------------------------------------------------------

    async def send(self, identity: str, command: Any) -> dict[str, Any]:
        """Send an OCPP command (a ``ocpp.v16.call`` object) to the charge point and return its
        answer's fields (snake_case)."""
        online = await ChargePointRow.filter(identity=identity).values_list("online", flat=True)
        if not online or not online[0]:
            raise ChargerOffline(f"charge point {identity} is offline")
        correlation = secrets.token_hex(8)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[correlation] = waiter
        message = {
            "id": correlation,
            "identity": identity,
            "action": type(command).__name__,
            "payload": dataclasses.asdict(command),
            "reply_to": self._token,
        }
        try:
            await self.bus.publish(COMMAND_CHANNEL, message)
            reply = await asyncio.wait_for(waiter, self.timeout)
        except TimeoutError:
            raise CommandFailed(f"charge point {identity} did not answer {message['action']}") from None
        finally:
            self._waiting.pop(correlation, None)
        if "error" in reply:
            raise CommandFailed(reply["error"])
        result: dict[str, Any] = reply["result"]
        return result

    def _on_message(self, message: dict[str, Any]) -> None:
        channel = message.get("channel")
        if channel == COMMAND_CHANNEL and message.get("identity") in self.held:
            self._spawn(self._run_command(message))
        elif channel == f"{_REPLY_PREFIX}{self._token}":
            waiter = self._waiting.get(message.get("id", ""))
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
        elif channel == CONNECTED_CHANNEL and message.get("holder") != self._token:
            old = self.held.pop(message.get("identity", ""), None)
            if old is not None:
                old.replaced.set()

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run_command(self, message: dict[str, Any]) -> None:
        session = self.held.get(message["identity"])
        reply: dict[str, Any] = {"id": message["id"]}
        try:
            command = getattr(call, message["action"])(**message["payload"])
            assert session is not None
            result = await session.call(command, suppress=False)
            reply["result"] = dataclasses.asdict(result)
        except Exception as exc:  # every failure is the sender's answer
            log.warning("OCPP %s to %s failed: %s", message.get("action"), message.get("identity"), exc)
            reply["error"] = f"{message.get('action')} failed: {exc}"
        await self.bus.publish(f"{_REPLY_PREFIX}{message['reply_to']}", reply)
