"""Tortoise models, one module per table group. Timestamps are UTC; money is integer minor units."""

from app.models.bookings import Booking, BookingStatus, CancelReason
from app.models.notifications import BookingEvent, Notification, NotificationKind
from app.models.payments import IdempotencyRecord, Payment, PaymentMethod, PaymentStatus
from app.models.stations import (
    Charger,
    ChargerStatus,
    ExceptionalPeriod,
    RegularHours,
    Station,
    StationStatus,
)
from app.models.users import Role, Session, User

__all__ = [
    "Booking",
    "BookingEvent",
    "BookingStatus",
    "CancelReason",
    "Charger",
    "ChargerStatus",
    "ExceptionalPeriod",
    "IdempotencyRecord",
    "Notification",
    "NotificationKind",
    "Payment",
    "PaymentMethod",
    "PaymentStatus",
    "RegularHours",
    "Role",
    "Session",
    "Station",
    "StationStatus",
    "User",
]
