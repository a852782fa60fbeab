"""A booking's history and the notifications outbox (DESIGN §13).

Both are written in the transaction of the change they describe. A notification row is its own
delivery record: each channel (live, mail) has its own state, so a crash between writing and
sending leaves the row undelivered, and the next delivery pass sends it.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class NotificationKind(StrEnum):
    BOOKING_CONFIRMED = "booking_confirmed"
    PAYMENT_RECEIPT = "payment_receipt"
    BOOKING_MOVED = "booking_moved"
    BOOKING_CANCELLED = "booking_cancelled"
    HOLD_EXPIRING = "hold_expiring"
    SLOT_REMINDER = "slot_reminder"
    SLOT_ENDING = "slot_ending"
    STATION_CLOSING_SOON = "station_closing_soon"


class BookingEvent(Model):
    """One line of a booking's history: what happened to it, when, and why."""

    id = fields.IntField(primary_key=True)
    booking: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Booking", related_name="events", on_delete=fields.CASCADE
    )
    at = fields.DatetimeField()
    event = fields.CharField(max_length=32)
    detail = fields.CharField(max_length=500, default="")

    class Meta:
        table = "booking_events"
        indexes = (Index(fields=("booking_id", "at")),)


class Notification(Model):
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.User", related_name="notifications", on_delete=fields.CASCADE
    )
    kind = fields.CharEnumField(NotificationKind, max_length=32)
    booking: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Booking", related_name="notifications", on_delete=fields.CASCADE, null=True
    )
    station: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Station", related_name="notifications", on_delete=fields.CASCADE, null=True
    )
    title = fields.CharField(max_length=200)
    body = fields.CharField(max_length=1000)
    created_at = fields.DatetimeField()
    read_at = fields.DatetimeField(null=True)
    #: Published to the driver's open pages.
    live_sent_at = fields.DatetimeField(null=True)
    #: Mail: sent, tries so far, and when to try next (None: this kind is not mailed).
    mail_sent_at = fields.DatetimeField(null=True)
    mail_attempts = fields.IntField(default=0)
    mail_next_at = fields.DatetimeField(null=True)
    #: ``{kind}:{booking}:{instant}``: a cause written twice (a job run twice) notifies once.
    dedupe_key = fields.CharField(max_length=200, unique=True)

    class Meta:
        table = "notifications"
        indexes = (
            Index(fields=("user_id", "id")),
            Index(fields=("user_id", "read_at")),
            Index(fields=("live_sent_at",)),
            Index(fields=("mail_sent_at", "mail_next_at")),
        )
