from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from app.models.bookings import BookingStatus
from app.models.payments import PaymentMethod, PaymentStatus
from app.models.stations import ChargerStatus, StationStatus
from app.models.users import Role
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Station',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=200)),
                ('location', fields.CharField(max_length=500)),
                ('city', fields.CharField(db_index=True, max_length=100)),
                ('latitude', fields.FloatField()),
                ('longitude', fields.FloatField()),
                ('timezone', fields.CharField(max_length=64)),
                ('price_per_hour', fields.IntField()),
                ('currency', fields.CharField(max_length=3)),
                ('status', fields.CharEnumField(default=StationStatus.ACTIVE, description='ACTIVE: ACTIVE\nINACTIVE: INACTIVE\nMAINTENANCE: MAINTENANCE', enum_type=StationStatus, max_length=16)),
                ('twentyfourseven', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'stations', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Charger',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('station', fields.ForeignKeyField('models.Station', source_field='station_id', db_constraint=True, to_field='id', related_name='chargers', on_delete=OnDelete.CASCADE)),
                ('charger_number', fields.IntField()),
                ('charger_type', fields.CharField(db_index=True, max_length=32)),
                ('power_kw', fields.FloatField()),
                ('status', fields.CharEnumField(default=ChargerStatus.AVAILABLE, description='AVAILABLE: AVAILABLE\nOUT_OF_SERVICE: OUT_OF_SERVICE', enum_type=ChargerStatus, max_length=16)),
            ],
            options={'table': 'chargers', 'app': 'models', 'unique_together': (('station', 'charger_number'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ExceptionalPeriod',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('station', fields.ForeignKeyField('models.Station', source_field='station_id', db_constraint=True, to_field='id', related_name='exceptional_periods', on_delete=OnDelete.CASCADE)),
                ('is_closing', fields.BooleanField()),
                ('period_begin', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('period_end', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'exceptional_periods', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An exceptional opening or closing, as UTC instants (OCPI ExceptionalPeriod).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RegularHours',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('station', fields.ForeignKeyField('models.Station', source_field='station_id', db_constraint=True, to_field='id', related_name='regular_hours', on_delete=OnDelete.CASCADE)),
                ('weekday', fields.SmallIntField()),
                ('period_begin', fields.CharField(max_length=5)),
                ('period_end', fields.CharField(max_length=5)),
            ],
            options={'table': 'regular_hours', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One weekly period, station-local wall time (OCPI RegularHours).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='User',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('email', fields.CharField(unique=True, max_length=254)),
                ('username', fields.CharField(unique=True, max_length=64)),
                ('password_hash', fields.CharField(max_length=255)),
                ('is_active', fields.BooleanField(default=True)),
                ('role', fields.CharEnumField(default=Role.DRIVER, description='DRIVER: driver\nOPERATOR: operator\nADMIN: admin', enum_type=Role, max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'users', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Booking',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='bookings', on_delete=OnDelete.RESTRICT)),
                ('station', fields.ForeignKeyField('models.Station', source_field='station_id', db_constraint=True, to_field='id', related_name='bookings', on_delete=OnDelete.RESTRICT)),
                ('charger', fields.ForeignKeyField('models.Charger', source_field='charger_id', db_constraint=True, to_field='id', related_name='bookings', on_delete=OnDelete.RESTRICT)),
                ('slot_start', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('slot_end', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('status', fields.CharEnumField(default=BookingStatus.CONFIRMED, description='CONFIRMED: CONFIRMED\nPAID: PAID\nCOMPLETED: COMPLETED\nCANCELLED: CANCELLED\nEXPIRED: EXPIRED', enum_type=BookingStatus, max_length=16)),
                ('amount_due', fields.IntField()),
                ('currency', fields.CharField(max_length=3)),
                ('hold_expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('vehicle_number', fields.CharField(null=True, max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'bookings', 'app': 'models', 'indexes': [Index(fields=['charger_id', 'slot_start']), Index(fields=['user_id', 'status']), Index(fields=['status', 'hold_expires_at']), Index(fields=['status', 'slot_end'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='IdempotencyRecord',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='idempotency_records', on_delete=OnDelete.CASCADE)),
                ('key', fields.CharField(max_length=255)),
                ('request_fingerprint', fields.CharField(max_length=64)),
                ('in_progress', fields.BooleanField(default=True)),
                ('response_status', fields.IntField(null=True)),
                ('response_body', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('expires_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'idempotency_records', 'app': 'models', 'unique_together': (('user', 'key'),), 'pk_attr': 'id', 'table_description': "What a user's Idempotency-Key has produced, so a retry replays it instead of charging again."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Payment',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('booking', fields.ForeignKeyField('models.Booking', source_field='booking_id', db_constraint=True, to_field='id', related_name='payments', on_delete=OnDelete.RESTRICT)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='payments', on_delete=OnDelete.RESTRICT)),
                ('amount', fields.IntField()),
                ('currency', fields.CharField(max_length=3)),
                ('payment_method', fields.CharEnumField(description='UPI: UPI\nCARD: CARD\nWALLET: WALLET', enum_type=PaymentMethod, max_length=16)),
                ('transaction_id', fields.CharField(unique=True, max_length=64)),
                ('status', fields.CharEnumField(description='SUCCESS: SUCCESS\nFAILED: FAILED\nREFUNDED: REFUNDED', enum_type=PaymentStatus, max_length=16)),
                ('idempotency_key', fields.CharField(null=True, max_length=255)),
                ('request_fingerprint', fields.CharField(null=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'payments', 'app': 'models', 'unique_together': (('user', 'idempotency_key'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Session',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('expires_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'sessions', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A signed-in browser. Deleting the row signs that browser out for good, cookie or not.'},
            bases=['Model'],
        ),
    ]
