from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class BookingStatus(StrEnum):
    CONFIRMED = "CONFIRMED"  # held, unpaid until hold_expires_at
    PAID = "PAID"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


ACTIVE_BOOKING_STATUSES = (BookingStatus.CONFIRMED, BookingStatus.PAID)


class CancelReason(StrEnum):
    """Why the system, not the driver, cancelled a booking (DESIGN §13)."""

    STATION_CLOSED = "station_closed"
    CHARGER_OUT_OF_SERVICE = "charger_out_of_service"
    STATION_INACTIVE = "station_inactive"
    CHARGER_FAULT = "charger_fault"


class Booking(Model):
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.User", related_name="bookings", on_delete=fields.RESTRICT
    )
    station: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Station", related_name="bookings", on_delete=fields.RESTRICT
    )
    charger: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Charger", related_name="bookings", on_delete=fields.RESTRICT
    )
    slot_start = fields.DatetimeField()
    slot_end = fields.DatetimeField()
    status = fields.CharEnumField(BookingStatus, max_length=16, default=BookingStatus.CONFIRMED)
    amount_due = fields.IntField()  # minor units
    currency = fields.CharField(max_length=3)
    hold_expires_at = fields.DatetimeField(null=True)
    vehicle_number = fields.CharField(max_length=32, null=True)
    #: Set when the system cancelled the booking; None when the driver did.
    cancel_reason = fields.CharEnumField(CancelReason, max_length=32, null=True)
    # Energy delivered by the booking's charging sessions (Wh), once one completes.
    energy_wh = fields.IntField(null=True)
    # The charger holding a reservation (OCPP ReserveNow) for this booking, until it is cancelled.
    reserved_charger_id = fields.IntField(null=True)
    # Set when nobody started charging by slot start + NO_SHOW_MINUTES: the charger was let go.
    no_show_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "bookings"
        indexes = (
            Index(fields=("charger_id", "slot_start")),
            Index(fields=("user_id", "status")),
            Index(fields=("status", "hold_expires_at")),
            Index(fields=("status", "slot_end")),
            Index(fields=("station_id", "slot_end")),
        )
