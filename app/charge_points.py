"""Charge points as operators manage them: created with a one-time auth key, keys rotated, chargers
linked to a charge point's connector, and the key checked when a charge point connects (DESIGN §14).

The key is shown once, when it is made; only its argon2 hash is stored (``app.passwords``), so a
leaked database does not let anyone pose as a charger.
"""

from __future__ import annotations

import secrets
import string
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError

from app.errors import Conflict, NotFound, ValidationFailed
from app.models import ChargePoint, Charger, Station
from app.passwords import hash_password, verify_password

#: 32 letters and digits (190 bits): inside OCPP's 16-40 for an AuthorizationKey, easy to paste, and
#: never starting with "-", which a command line (``simulate-charger --key KEY``) takes for an option.
KEY_LENGTH = 32
KEY_ALPHABET = string.ascii_letters + string.digits


class ChargePointExists(Conflict):
    code, detail = "charge_point_exists", "A charge point with this identity exists already."


class ConnectorTaken(Conflict):
    code, detail = "connector_taken", "Another charger is linked to this connector of the charge point."


def new_auth_key() -> str:
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_LENGTH))


async def create(station_id: int, identity: str) -> tuple[ChargePoint, str]:
    """A new charge point of the station and its auth key (returned only here)."""
    if not await Station.exists(id=station_id):
        raise NotFound("Station not found.")
    key = new_auth_key()
    key_hash = await hash_password(key)
    try:
        charge_point = await ChargePoint.create(station_id=station_id, identity=identity, auth_key_hash=key_hash)
    except IntegrityError:
        raise ChargePointExists() from None
    return charge_point, key


async def get(station_id: int, charge_point_id: int) -> ChargePoint:
    charge_point = await ChargePoint.filter(id=charge_point_id, station_id=station_id).first()
    if charge_point is None:
        raise NotFound("Charge point not found.")
    return charge_point


async def rotate_key(station_id: int, charge_point_id: int) -> tuple[ChargePoint, str]:
    """A new key; the old one stops working at the charge point's next connection."""
    charge_point = await get(station_id, charge_point_id)
    key = new_auth_key()
    charge_point.auth_key_hash = await hash_password(key)
    await charge_point.save(update_fields=["auth_key_hash"])
    return charge_point, key


async def authenticate(identity: str, key: str) -> ChargePoint | None:
    """The charge point when ``key`` is its auth key; None for an unknown identity or a wrong key."""
    charge_point = await ChargePoint.filter(identity=identity).first()
    if charge_point is None or not await verify_password(charge_point.auth_key_hash, key):
        return None
    return charge_point


def is_online(charge_point: ChargePoint, now: datetime, heartbeat_seconds: int) -> bool:
    """Connected and heard from within twice the heartbeat interval."""
    seen = charge_point.last_seen_at
    return charge_point.online and seen is not None and now - seen <= timedelta(seconds=2 * heartbeat_seconds)


async def list_for_station(station_id: int, now: datetime, heartbeat_seconds: int) -> list[dict[str, Any]]:
    """Each charge point of the station with its boot information, online state and connectors."""
    if not await Station.exists(id=station_id):
        raise NotFound("Station not found.")
    points = await ChargePoint.filter(station_id=station_id).order_by("id")
    chargers = await Charger.filter(station_id=station_id, charge_point_id__not_isnull=True).order_by("connector_id")
    by_point: dict[int, list[dict[str, Any]]] = {}
    for charger in chargers:
        by_point.setdefault(charger.charge_point_id, []).append(  # type: ignore[attr-defined]
            {
                "connector_id": charger.connector_id,
                "charger_id": charger.id,
                "charger_number": charger.charger_number,
                "live_status": charger.live_status,
                "live_status_at": charger.live_status_at,
            }
        )
    return [
        {
            "id": point.id,
            "identity": point.identity,
            "online": is_online(point, now, heartbeat_seconds),
            "last_seen_at": point.last_seen_at,
            "last_boot_at": point.last_boot_at,
            "vendor": point.vendor,
            "model": point.model,
            "serial": point.serial,
            "firmware": point.firmware,
            "connectors": by_point.get(point.id, []),
        }
        for point in points
    ]


async def charger_of(station_id: int, charger_id: int) -> Charger:
    charger = await Charger.filter(id=charger_id, station_id=station_id).first()
    if charger is None:
        raise NotFound("Charger not found.")
    return charger


async def link_charger(station_id: int, charger_id: int, charge_point_id: int | None, connector_id: int | None) -> None:
    """Link a charger to a connector of a charge point of the same station (both None: unlink)."""
    charger = await charger_of(station_id, charger_id)
    if (charge_point_id is None) != (connector_id is None):
        msg = "charge_point_id and connector_id go together: both set, or both null to unlink"
        raise ValidationFailed([{"loc": ["body", "connector_id"], "msg": msg}])
    if charge_point_id is not None and not await ChargePoint.exists(id=charge_point_id, station_id=station_id):
        msg = "no charge point with this id at this station"
        raise ValidationFailed([{"loc": ["body", "charge_point_id"], "msg": msg}])
    charger.charge_point_id = charge_point_id  # type: ignore[attr-defined]
    charger.connector_id = connector_id
    if charge_point_id is None:
        charger.live_status, charger.live_status_at = None, None
    try:
        await charger.save(update_fields=["charge_point_id", "connector_id", "live_status", "live_status_at"])
    except IntegrityError:
        raise ConnectorTaken() from None
