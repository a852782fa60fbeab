from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class StationStatus(StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    MAINTENANCE = "MAINTENANCE"


class ChargerStatus(StrEnum):
    AVAILABLE = "AVAILABLE"
    OUT_OF_SERVICE = "OUT_OF_SERVICE"


class Station(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    location = fields.CharField(max_length=500)
    city = fields.CharField(max_length=100, db_index=True)
    latitude = fields.FloatField()
    longitude = fields.FloatField()
    timezone = fields.CharField(max_length=64)
    price_per_hour = fields.IntField()  # minor units
    currency = fields.CharField(max_length=3)
    status = fields.CharEnumField(StationStatus, max_length=16, default=StationStatus.ACTIVE)
    twentyfourseven = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    regular_hours: fields.ReverseRelation[RegularHours]
    exceptional_periods: fields.ReverseRelation[ExceptionalPeriod]
    chargers: fields.ReverseRelation[Charger]

    class Meta:
        table = "stations"


class RegularHours(Model):
    """One weekly period, station-local wall time (OCPI RegularHours)."""

    id = fields.IntField(primary_key=True)
    station: fields.ForeignKeyRelation[Station] = fields.ForeignKeyField(
        "models.Station", related_name="regular_hours", on_delete=fields.CASCADE
    )
    weekday = fields.SmallIntField()  # 1 = Monday … 7 = Sunday
    period_begin = fields.CharField(max_length=5)  # "HH:MM"
    period_end = fields.CharField(max_length=5)  # "HH:MM"; end <= begin runs past midnight

    class Meta:
        table = "regular_hours"


class ExceptionalPeriod(Model):
    """An exceptional opening or closing, as UTC instants (OCPI ExceptionalPeriod)."""

    id = fields.IntField(primary_key=True)
    station: fields.ForeignKeyRelation[Station] = fields.ForeignKeyField(
        "models.Station", related_name="exceptional_periods", on_delete=fields.CASCADE
    )
    is_closing = fields.BooleanField()
    period_begin = fields.DatetimeField()
    period_end = fields.DatetimeField()

    class Meta:
        table = "exceptional_periods"


class Charger(Model):
    id = fields.IntField(primary_key=True)
    station: fields.ForeignKeyRelation[Station] = fields.ForeignKeyField(
        "models.Station", related_name="chargers", on_delete=fields.CASCADE
    )
    charger_number = fields.IntField()
    charger_type = fields.CharField(max_length=32, db_index=True)
    power_kw = fields.FloatField()
    status = fields.CharEnumField(ChargerStatus, max_length=16, default=ChargerStatus.AVAILABLE)
    # The charge point and connector this charger is (OCPP); None until an operator links it.
    charge_point: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.ChargePoint", related_name="connectors", on_delete=fields.SET_NULL, null=True
    )
    connector_id = fields.IntField(null=True)
    # What the charger last reported (``LiveStatus``), and when.
    live_status = fields.CharField(max_length=16, null=True)
    live_status_at = fields.DatetimeField(null=True)

    class Meta:
        table = "chargers"
        unique_together = (("station", "charger_number"), ("charge_point", "connector_id"))
