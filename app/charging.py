"""What chargers tell us over OCPP 1.6J (DESIGN §14), as plain domain functions: no sockets here.

``app.ocpp_link`` turns each incoming message into one of these calls and their answers back into
OCPP results. Every function commits its change, then publishes (``app.events``): the station's
``availability`` when what the public sees of a charger changed, and the driver's own ``session``
event (``publish_to_driver``) while their car charges.

**Who may charge.** A connector that is booked now (a booking that holds it, ``holds_charger``) is
for the booked driver alone: anyone else's StartTransaction is refused (``Invalid``), so a walk-in
cannot take a booked charger. A connector without a booking now is open to any active driver.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from app.availability import holds_charger
from app.bus import Bus
from app.events import publish_availability, publish_to_driver, quietly
from app.models import Booking, ChargePoint, Charger, ChargingSession, LiveStatus, User

log = logging.getLogger(__name__)

ACCEPTED, BLOCKED, INVALID = "Accepted", "Blocked", "Invalid"
#: Connector 0 speaks for the whole charge point; only these of its states say something about
#: every connector (an "Available" charge point still has each connector report its own state).
WHOLE_POINT_STATES = frozenset({LiveStatus.UNAVAILABLE, LiveStatus.FAULTED})
ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"


@dataclass(frozen=True)
class Started:
    """A StartTransaction's answer: the transactionId (0 when refused) and the idTag's status."""

    transaction_id: int
    status: str


async def _publish_station(bus: Bus, station_id: int, now: datetime) -> None:
    await quietly(publish_availability(bus, station_id, now))


async def heard_from(charge_point_id: int, now: datetime, bus: Bus) -> None:
    """Any message: the charge point is alive. Coming back online changes what the station shows."""
    came_back = await ChargePoint.filter(id=charge_point_id, online=False).update(online=True, last_seen_at=now)
    if came_back:
        station_id = await ChargePoint.get(id=charge_point_id).values_list("station_id", flat=True)
        await _publish_station(bus, int(station_id), now)  # type: ignore[call-overload]
    else:
        await ChargePoint.filter(id=charge_point_id).update(last_seen_at=now)


async def went_away(charge_point_id: int, now: datetime, bus: Bus) -> None:
    """Its socket closed: offline at once (no need to wait for two missed heartbeats)."""
    if await ChargePoint.filter(id=charge_point_id, online=True).update(online=False):
        station_id = await ChargePoint.get(id=charge_point_id).values_list("station_id", flat=True)
        await _publish_station(bus, int(station_id), now)  # type: ignore[call-overload]


async def booted(charge_point_id: int, now: datetime, info: Mapping[str, str | None]) -> None:
    """BootNotification: remember what the charge point says it is."""
    await ChargePoint.filter(id=charge_point_id).update(
        last_boot_at=now,
        vendor=(info.get("charge_point_vendor") or "")[:20] or None,
        model=(info.get("charge_point_model") or "")[:20] or None,
        serial=(info.get("charge_point_serial_number") or info.get("charge_box_serial_number") or "")[:25] or None,
        firmware=(info.get("firmware_version") or "")[:50] or None,
    )


async def status_changed(charge_point_id: int, connector_id: int, status: str, now: datetime, bus: Bus) -> None:
    """StatusNotification: the connector's ``live_status`` (connector 0: the whole charge point)."""
    try:
        live = LiveStatus(status)
    except ValueError:
        log.warning("charge point %s sent an unknown status %r", charge_point_id, status)
        return
    chargers = Charger.filter(charge_point_id=charge_point_id)
    if connector_id == 0:
        if live not in WHOLE_POINT_STATES:
            return
    else:
        chargers = chargers.filter(connector_id=connector_id)
    station_ids: set[int] = set(await chargers.values_list("station_id", flat=True))  # type: ignore[arg-type]
    if await chargers.update(live_status=live.value, live_status_at=now):
        for station_id in station_ids:
            await _publish_station(bus, station_id, now)


async def authorize(id_tag: str) -> str:
    """Authorize: an active driver's idTag is Accepted, a deactivated one's Blocked, others Invalid."""
    user = await User.filter(id_tag=id_tag).first()
    if user is None:
        return INVALID
    return ACCEPTED if user.is_active else BLOCKED


async def _charger(charge_point_id: int, connector_id: int) -> Charger | None:
    return await Charger.filter(charge_point_id=charge_point_id, connector_id=connector_id).first()


async def booking_now(charger_id: int, now: datetime) -> Booking | None:
    """The booking that holds the charger at ``now``, if any."""
    for booking in await Booking.filter(charger_id=charger_id, slot_start__lte=now, slot_end__gt=now):
        if holds_charger(booking.status, booking.hold_expires_at, now):
            return booking
    return None


async def start(
    charge_point_id: int, connector_id: int, id_tag: str, meter_start: int, now: datetime, bus: Bus
) -> Started:
    """StartTransaction: Accepted for the booked driver on a connector booked now, or for any active
    driver on a connector without a booking now; otherwise refused (no session is stored)."""
    status = await authorize(id_tag)
    charger = await _charger(charge_point_id, connector_id)
    if status != ACCEPTED or charger is None:
        return Started(0, status if status != ACCEPTED else INVALID)
    booking = await booking_now(charger.id, now)
    user_id = await User.get(id_tag=id_tag).values_list("id", flat=True)
    if booking is not None and booking.user_id != user_id:  # type: ignore[attr-defined]
        return Started(0, INVALID)
    async with in_transaction():
        # A session the charger never reported stopping ends where a new one starts.
        await ChargingSession.filter(charger_id=charger.id, stopped_at__isnull=True).update(
            stopped_at=now, stop_reason="Superseded"
        )
        session = await ChargingSession.create(
            booking=booking, charger=charger, id_tag=id_tag, started_at=now, meter_start=meter_start
        )
    await _publish_station(bus, charger.station_id, now)  # type: ignore[attr-defined]
    await _tell_driver(bus, session, now)
    return Started(session.id, ACCEPTED)


async def stop(transaction_id: int, meter_stop: int, reason: str | None, now: datetime, bus: Bus) -> None:
    """StopTransaction: the session ends; a booked one adds its energy to the booking."""
    session = await ChargingSession.filter(id=transaction_id).select_related("charger").first()
    if session is None or session.stopped_at is not None:
        return
    async with in_transaction():
        session.stopped_at, session.meter_stop, session.stop_reason = now, meter_stop, reason or "Local"
        session.power_w = 0.0
        await session.save(update_fields=["stopped_at", "meter_stop", "stop_reason", "power_w"])
        if session.booking_id is not None:  # type: ignore[attr-defined]
            delivered = await ChargingSession.filter(booking_id=session.booking_id).values_list(  # type: ignore[attr-defined]
                "meter_start", "meter_stop"
            )
            total = sum(max(0, (end or begin) - begin) for begin, end in delivered)
            await Booking.filter(id=session.booking_id).update(energy_wh=total)  # type: ignore[attr-defined]
    await _publish_station(bus, session.charger.station_id, now)
    await _tell_driver(bus, session, now)


def readings(meter_value: Iterable[Mapping[str, Any]]) -> tuple[int | None, float | None]:
    """The latest energy register (Wh) and power (W) in a MeterValues ``meterValue`` list; OCPP's
    default measurand is the energy register, and kWh/kW are scaled."""
    energy: int | None = None
    power: float | None = None
    for sample in meter_value:
        for value in sample.get("sampled_value", []):
            try:
                number = float(value["value"])
            except (KeyError, TypeError, ValueError):
                continue
            measurand = value.get("measurand") or ENERGY
            unit = value.get("unit") or ("Wh" if measurand == ENERGY else "W")
            if measurand == ENERGY:
                energy = round(number * 1000 if unit == "kWh" else number)
            elif measurand == POWER:
                power = number * 1000 if unit == "kW" else number
    return energy, power


async def metered(
    charge_point_id: int,
    connector_id: int,
    transaction_id: int | None,
    meter_value: Iterable[Mapping[str, Any]],
    now: datetime,
    bus: Bus,
) -> None:
    """MeterValues: the running session's energy and power, told to its driver and to the
    station's screens (whose charger tiles show the running session's figures)."""
    energy, power = readings(meter_value)
    sessions = ChargingSession.filter(stopped_at__isnull=True)
    if transaction_id:
        sessions = sessions.filter(id=transaction_id)
    else:
        charger = await _charger(charge_point_id, connector_id)
        if charger is None:
            return
        sessions = sessions.filter(charger_id=charger.id)
    session = await sessions.order_by("-id").first()
    if session is None or (energy is None and power is None):
        return
    if energy is not None:
        session.meter_last = energy
    if power is not None:
        session.power_w = power
    await session.save(update_fields=["meter_last", "power_w"])
    await _tell_driver(bus, session, now)
    station_id = await Charger.get(id=session.charger_id).values_list("station_id", flat=True)  # type: ignore[attr-defined]
    await _publish_station(bus, int(station_id), now)  # type: ignore[call-overload]


def session_figures(session: ChargingSession, now: datetime) -> dict[str, Any]:
    """What a driver (and, without the booking, a station screen) is told of a session."""
    end = session.stopped_at or now
    return {
        "transaction_id": session.id,
        "energy_kwh": round(session.energy_wh / 1000, 3),
        "power_kw": round((session.power_w or 0.0) / 1000, 2),
        "since": session.started_at.isoformat(),
        "elapsed_seconds": max(0, int((end - session.started_at).total_seconds())),
        "stopped_at": session.stopped_at.isoformat() if session.stopped_at else None,
    }


async def _tell_driver(bus: Bus, session: ChargingSession, now: datetime) -> None:
    if session.booking_id is None:  # type: ignore[attr-defined]
        return
    user_id = await Booking.get(id=session.booking_id).values_list("user_id", flat=True)  # type: ignore[attr-defined]
    message = {"type": "session", "booking_id": session.booking_id, **session_figures(session, now)}  # type: ignore[attr-defined]
    await quietly(publish_to_driver(bus, int(user_id), message))  # type: ignore[call-overload]


async def mark_offline(now: datetime, heartbeat_seconds: int, bus: Bus) -> int:
    """Charge points silent for more than twice the heartbeat interval are offline (the worker's
    sweep, never a per-request check); their stations' screens are told."""
    silent = ChargePoint.filter(online=True, last_seen_at__lt=now - timedelta(seconds=2 * heartbeat_seconds))
    rows = await silent.values("id", "station_id")
    if not rows:
        return 0
    marked = await ChargePoint.filter(id__in=[r["id"] for r in rows], online=True).update(online=False)
    for station_id in {r["station_id"] for r in rows}:
        await _publish_station(bus, station_id, now)
    return int(marked)
