"""Operator endpoints for charge points (DESIGN §14): create with a one-time key, rotate the key,
list with online state and connectors. Linking a charger to a connector is the charger's PATCH
(``app.blueprints.operator``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint
from quart_schema import document_response, security_scheme_blueprint, validate_request, validate_response

from app import charge_points
from app.auth import authorize
from app.models import Role
from app.state import state
from app.wire import Problem, signed_in

blueprint = Blueprint("charge_points", __name__, url_prefix="/api/stations")

OPERATORS = (Role.OPERATOR, Role.ADMIN)
security_scheme_blueprint(blueprint, signed_in(*OPERATORS))

Identity = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9._-]{1,48}$",
        description="The charge point's OCPP identity: the last segment of its URL /ocpp/{identity}.",
    ),
]


class ChargePointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    identity: Identity


class ChargePointKey(BaseModel):
    id: int
    identity: str
    auth_key: str = Field(description="HTTP Basic password for /ocpp/{identity}. Shown only in this answer.")
    ocpp_path: str


class ConnectorOut(BaseModel):
    connector_id: int
    charger_id: int
    charger_number: int
    live_status: str | None
    live_status_at: datetime | None


class ChargePointOut(BaseModel):
    id: int
    identity: str
    online: bool
    last_seen_at: datetime | None
    last_boot_at: datetime | None
    vendor: str | None
    model: str | None
    serial: str | None
    firmware: str | None
    connectors: list[ConnectorOut]


class ChargePointList(BaseModel):
    items: list[ChargePointOut]


def _key_answer(charge_point: charge_points.ChargePoint, key: str) -> ChargePointKey:
    path = f"/ocpp/{charge_point.identity}"
    return ChargePointKey(id=charge_point.id, identity=charge_point.identity, auth_key=key, ocpp_path=path)


@blueprint.post("/<int:station_id>/charge-points")
@validate_request(ChargePointIn)
@validate_response(ChargePointKey, 201)
@document_response(Problem, 409)
async def create_charge_point(station_id: int, data: ChargePointIn) -> tuple[ChargePointKey, int]:
    """Register a charge point; the answer holds its auth key, which is never shown again. 409
    `charge_point_exists` when the identity is taken."""
    await authorize(*OPERATORS)
    charge_point, key = await charge_points.create(station_id, data.identity)
    return _key_answer(charge_point, key), 201


@blueprint.post("/<int:station_id>/charge-points/<int:charge_point_id>/rotate-key")
@validate_response(ChargePointKey)
async def rotate_key(station_id: int, charge_point_id: int) -> ChargePointKey:
    """A new auth key (shown only here); the old one no longer opens a connection."""
    await authorize(*OPERATORS)
    charge_point, key = await charge_points.rotate_key(station_id, charge_point_id)
    return _key_answer(charge_point, key)


@blueprint.get("/<int:station_id>/charge-points")
@validate_response(ChargePointList)
async def list_charge_points(station_id: int) -> ChargePointList:
    """The station's charge points: online state, last message, boot information, connectors."""
    await authorize(*OPERATORS)
    services = state()
    items = await charge_points.list_for_station(
        station_id, services.clock.now(), services.settings.ocpp_heartbeat_seconds
    )
    return ChargePointList(items=[ChargePointOut.model_validate(item) for item in items])
