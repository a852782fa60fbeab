"""Station events on the bus (DESIGN §7): what live clients see and what keeps caches honest.

Every message goes out on the station's own channel with a per-station ``seq``, so a client that
sees a gap knows it missed something. Every process's ``StationDirectory`` drops its cached view of
a station on any message on that channel, which is why an edit that changes neither status nor
availability still publishes a payload-free ``"changed"`` message.

Publish only after the transaction has committed: a listener that reloads on the message must see
the new rows. The local directory is invalidated before publishing as well, so the process that
made the change reads its own write even before the bus has delivered the message back to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.availability import chargers_now
from app.bus import Bus
from app.state import state

if TYPE_CHECKING:
    from app.directory import StationDirectory

AVAILABILITY, STATUS, CHANGED = "availability", "status", "changed"


def station_channel(station_id: int) -> str:
    return f"station:{station_id}"


async def publish_station_event(bus: Bus, station_id: int, type_: str, payload: dict[str, Any]) -> dict[str, Any]:
    seq = await bus.next_seq(station_channel(station_id))
    message = {"type": type_, "seq": seq, "station_id": station_id, **payload}
    await bus.publish(station_channel(station_id), message)
    return message


def _services(bus: Bus | None, directory: StationDirectory | None) -> tuple[Bus, StationDirectory]:
    """The app's bus and directory unless given (a worker process passes its own)."""
    if bus is None or directory is None:
        app_state = state()
        bus = bus or app_state.bus
        directory = directory or app_state.directory
    return bus, directory


async def availability_changed(
    station_id: int, *, bus: Bus | None = None, directory: StationDirectory | None = None
) -> dict[str, Any] | None:
    """Tell everyone which chargers are free now; call after a booking or charger change commits.
    Only the chargers and the bookings holding them now are read: the message carries nothing
    else, and the directories reload the rest of the station when they next need it."""
    bus, directory = _services(bus, directory)
    directory.invalidate(station_id)
    chargers = await chargers_now(station_id, directory.now())
    if chargers is None:
        return None
    payload = {"chargers": chargers, "available_chargers": sum(c["available_now"] for c in chargers)}
    return await publish_station_event(bus, station_id, AVAILABILITY, payload)


async def status_changed(
    station_id: int, *, bus: Bus | None = None, directory: StationDirectory | None = None
) -> dict[str, Any] | None:
    """Tell everyone whether the station is open; call after hours or station status change, and
    at every open/close instant."""
    bus, directory = _services(bus, directory)
    directory.invalidate(station_id)
    view = await directory.load(station_id)
    if view is None:
        return None
    status = view.status_at(directory.now())
    payload = {
        "is_open": status["is_open"],
        "open_time": status["open_time"],
        "close_time": status["close_time"],
        "next_change_at": status["next_change_at"],
        "server_time": status["current_server_time"],
        "station_status": view.status,
        "available_chargers": status["available_chargers"],
    }
    return await publish_station_event(bus, station_id, STATUS, payload)


async def station_changed(
    station_id: int, *, bus: Bus | None = None, directory: StationDirectory | None = None
) -> dict[str, Any]:
    """Invalidate every process's cached view after an edit that live clients need not hear about
    (name, address, price)."""
    bus, directory = _services(bus, directory)
    directory.invalidate(station_id)
    return await publish_station_event(bus, station_id, CHANGED, {})
