"""Charge points (OCPP 1.6J stations' controllers) and the charging sessions they report.

A charger row is one connector; it may be linked to a charge point and that charge point's
``connector_id`` (see ``Charger``). A charging session is one OCPP transaction: its primary key is
the ``transactionId`` we hand the charge point in the StartTransaction answer.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class LiveStatus(StrEnum):
    """A connector's status as the charger reports it (OCPP 1.6 ChargePointStatus)."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EVSE = "SuspendedEVSE"
    SUSPENDED_EV = "SuspendedEV"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


class ChargePoint(Model):
    id = fields.IntField(primary_key=True)
    station: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Station", related_name="charge_points", on_delete=fields.CASCADE
    )
    # The OCPP identity: the last path segment of ``/ocpp/{identity}`` and the Basic auth user.
    identity = fields.CharField(max_length=48, unique=True)
    auth_key_hash = fields.CharField(max_length=255)
    vendor = fields.CharField(max_length=20, null=True)
    model = fields.CharField(max_length=20, null=True)
    serial = fields.CharField(max_length=25, null=True)
    firmware = fields.CharField(max_length=50, null=True)
    last_boot_at = fields.DatetimeField(null=True)
    last_seen_at = fields.DatetimeField(null=True)
    # Connected and heard from within twice the heartbeat interval; set when it connects or is
    # heard from again, cleared when its socket closes or by the worker's offline sweep.
    online = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "charge_points"


class ChargingSession(Model):
    """One OCPP transaction, whose id is the transactionId handed to the charge point."""

    id = fields.IntField(primary_key=True)
    booking: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Booking", related_name="charging_sessions", on_delete=fields.SET_NULL, null=True
    )
    charger: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Charger", related_name="charging_sessions", on_delete=fields.CASCADE
    )
    id_tag = fields.CharField(max_length=20)
    started_at = fields.DatetimeField()
    stopped_at = fields.DatetimeField(null=True)
    meter_start = fields.IntField()  # Wh, the connector's register when it started
    meter_last = fields.IntField(null=True)  # Wh, the last register reading
    meter_stop = fields.IntField(null=True)  # Wh
    power_w = fields.FloatField(null=True)  # the last power reading
    stop_reason = fields.CharField(max_length=32, null=True)

    class Meta:
        table = "charging_sessions"

    @property
    def energy_wh(self) -> int:
        last = self.meter_stop if self.meter_stop is not None else self.meter_last
        return max(0, (last if last is not None else self.meter_start) - self.meter_start)
