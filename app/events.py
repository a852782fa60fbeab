"""Station events on the bus (DESIGN §7): the one seam through which changes are published.

**Who publishes:** the code that commits a change publishes it, after the commit, through one of
the ``publish_*`` functions below, and nothing else publishes station events. A listener that
reloads on the message must see the new rows, so never publish inside the transaction. A request
that committed wraps the publish in ``quietly``: the change is done and must not be reported as
failed (and retried) because the announcement failed; the bus resynchronises everyone when it is
back. Scheduled broadcasts let failures propagate, so their job is retried.

Every message goes out on the station's own channel with a per-station ``seq`` and the ``epoch``
those numbers belong to, so a client that sees a gap, or a new epoch, knows it missed something.
Publishers never touch caches: every process's ``StationDirectory`` drops its cached view of a
station when any message on that channel is delivered to it, and the bus delivers in the
publishing process first, before ``publish`` returns, so the process that made a change reads its
own write. That is also why an edit that
changes neither status nor availability still publishes a payload-free ``changed`` message.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Mapping
from datetime import datetime
from typing import Any

from app.availability import chargers_now
from app.bus import Bus
from app.station_views import StationView, load_views

log = logging.getLogger(__name__)

AVAILABILITY, STATUS, CHANGED = "availability", "status", "changed"
_CHANNEL_PREFIX = "station:"
_DRIVER_PREFIX = "driver:"


def station_channel(station_id: int) -> str:
    return f"{_CHANNEL_PREFIX}{station_id}"


def driver_channel(user_id: int) -> str:
    """The channel of one driver's own events (notifications, charging sessions), for ``/ws/me``."""
    return f"{_DRIVER_PREFIX}{user_id}"


def station_of(message: Mapping[str, Any]) -> int | None:
    """The station a delivered bus message is about, from its channel (``station:{id}``)."""
    channel = message.get("channel")
    if isinstance(channel, str) and channel.startswith(_CHANNEL_PREFIX):
        with contextlib.suppress(ValueError):
            return int(channel.removeprefix(_CHANNEL_PREFIX))
    return None


def status_fields(view: StationView, now: datetime) -> dict[str, Any]:
    """What ``status`` events and live snapshots say about a station at ``now``."""
    status = view.status_at(now)
    return {
        "is_open": status["is_open"],
        "open_time": status["open_time"],
        "close_time": status["close_time"],
        "exceptions_today": status["exceptions_today"],
        "next_change_at": status["next_change_at"],
        "server_time": status["current_server_time"],
        "station_status": status["station_status"],
        "available_chargers": status["available_chargers"],
        "total_chargers": status["total_chargers"],
    }


async def quietly(publishing: Awaitable[object]) -> None:
    """Publish after a committed change: a failure is logged, never the change's failure."""
    try:
        await publishing
    except Exception:
        log.warning("could not publish a station event after a committed change", exc_info=True)


def planned(at: datetime | None, now: datetime) -> dict[str, Any]:
    """The fields that say an event is a planned transition: its instant, and how late it was
    published (``app.metrics`` reports that lateness)."""
    if at is None:
        return {}
    return {"planned_at": at.isoformat(), "late_by_ms": round((now - at).total_seconds() * 1000)}


async def _publish(bus: Bus, station_id: int, type_: str, payload: dict[str, Any]) -> dict[str, Any]:
    seq = await bus.next_seq(station_channel(station_id))
    message = {"type": type_, "seq": seq, "epoch": bus.epoch, "station_id": station_id, **payload}
    await bus.publish(station_channel(station_id), message)
    return message


async def publish_availability(
    bus: Bus, station_id: int, now: datetime, planned_at: datetime | None = None
) -> dict[str, Any] | None:
    """Which chargers are free now: after a booking or charger change commits, and when a booked
    slot starts or ends. Only the chargers and the bookings holding them now are read. Each charger
    comes whole (connector, power), and with the counts, so a page draws a new charger and its
    "free of total" line from the message alone; caches reload the rest when they next need it."""
    chargers = await chargers_now(station_id, now)
    if chargers is None:
        return None
    payload = {
        "chargers": chargers,
        "available_chargers": sum(c["available_now"] for c in chargers),
        **planned(planned_at, now),
        "total_chargers": len(chargers),
    }
    return await _publish(bus, station_id, AVAILABILITY, payload)


async def publish_status(
    bus: Bus, station_id: int, now: datetime, planned_at: datetime | None = None
) -> dict[str, Any] | None:
    """Whether the station is open: after its hours or status change, and at every open/close
    instant. The view is read fresh from the database, never from a cache."""
    views = await load_views([station_id], now)
    if not views:
        return None
    return await _publish(bus, station_id, STATUS, {**status_fields(views[0], now), **planned(planned_at, now)})


async def publish_changed(bus: Bus, station_id: int) -> dict[str, Any]:
    """After an edit live clients need not hear about (name, address, price): caches forget it."""
    return await _publish(bus, station_id, CHANGED, {})


async def publish_to_driver(bus: Bus, user_id: int, message: dict[str, Any]) -> None:
    """An event for one driver's open pages only (``/ws/me``), never for a station's audience."""
    await bus.publish(driver_channel(user_id), message)
