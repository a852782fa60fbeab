"""A booking's history (``booking_events``) and the notifications outbox (``notifications``)."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from app.models.notifications import NotificationKind


class Migration(migrations.Migration):
    dependencies = [("models", "0004_booking_cancel_reason")]

    initial = False

    operations = [
        ops.CreateModel(
            name="BookingEvent",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "booking",
                    fields.ForeignKeyField(
                        "models.Booking",
                        source_field="booking_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="events",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("event", fields.CharField(max_length=32)),
                ("detail", fields.CharField(default="", max_length=500)),
            ],
            options={
                "table": "booking_events",
                "app": "models",
                "indexes": [Index(fields=["booking_id", "at"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Notification",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "user",
                    fields.ForeignKeyField(
                        "models.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="notifications",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "kind",
                    fields.CharEnumField(
                        description="\n".join(f"{kind.name}: {kind.value}" for kind in NotificationKind),
                        enum_type=NotificationKind,
                        max_length=32,
                    ),
                ),
                (
                    "booking",
                    fields.ForeignKeyField(
                        "models.Booking",
                        source_field="booking_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="notifications",
                        on_delete=OnDelete.CASCADE,
                        null=True,
                    ),
                ),
                (
                    "station",
                    fields.ForeignKeyField(
                        "models.Station",
                        source_field="station_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="notifications",
                        on_delete=OnDelete.CASCADE,
                        null=True,
                    ),
                ),
                ("title", fields.CharField(max_length=200)),
                ("body", fields.CharField(max_length=1000)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("read_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("live_sent_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("mail_sent_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("mail_attempts", fields.IntField(default=0)),
                ("mail_next_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("dedupe_key", fields.CharField(unique=True, max_length=200)),
            ],
            options={
                "table": "notifications",
                "app": "models",
                "indexes": [
                    Index(fields=["user_id", "id"]),
                    Index(fields=["user_id", "read_at"]),
                    Index(fields=["live_sent_at"]),
                    Index(fields=["mail_sent_at", "mail_next_at"]),
                ],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
    ]
