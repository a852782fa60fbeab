from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from app.models.bookings import CancelReason
from app.models.payments import PaymentStatus


class Migration(migrations.Migration):
    dependencies = [("models", "0003_booking_station_index")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Booking",
            name="cancel_reason",
            field=fields.CharEnumField(
                description="STATION_CLOSED: station_closed\nCHARGER_OUT_OF_SERVICE: charger_out_of_service\n"
                "STATION_INACTIVE: station_inactive\nCHARGER_FAULT: charger_fault",
                enum_type=CancelReason,
                max_length=32,
                null=True,
            ),
        ),
        ops.AlterField(
            model_name="Payment",
            name="status",
            field=fields.CharEnumField(
                description="SUCCESS: SUCCESS\nFAILED: FAILED\nREFUNDED: REFUNDED\nREFUND_PENDING: REFUND_PENDING",
                enum_type=PaymentStatus,
                max_length=16,
            ),
        ),
    ]
