"""Charge points, charging sessions, charger links and live status, booking energy and
reservation state, and every driver's OCPP idTag (existing users get one here)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from app.models.users import new_id_tag
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.migrations.constraints import UniqueConstraint



async def _give_every_user_an_id_tag(apps, schema_editor):
    client = schema_editor.client
    placeholder = "$1" if client.capabilities.dialect == "postgres" else "?"
    rows = await client.execute_query_dict("SELECT id FROM users WHERE id_tag IS NULL")
    for row in rows:
        await client.execute_query(
            f"UPDATE users SET id_tag = {placeholder} WHERE id = {placeholder.replace('1', '2')}",
            [new_id_tag(), row["id"]],
        )


async def _nothing(apps, schema_editor):
    return None


class Migration(migrations.Migration):
    dependencies = [('models', '0005_notifications')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ChargePoint',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('station', fields.ForeignKeyField('models.Station', source_field='station_id', db_constraint=True, to_field='id', related_name='charge_points', on_delete=OnDelete.CASCADE)),
                ('identity', fields.CharField(unique=True, max_length=48)),
                ('auth_key_hash', fields.CharField(max_length=255)),
                ('vendor', fields.CharField(null=True, max_length=20)),
                ('model', fields.CharField(null=True, max_length=20)),
                ('serial', fields.CharField(null=True, max_length=25)),
                ('firmware', fields.CharField(null=True, max_length=50)),
                ('last_boot_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_seen_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('online', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'charge_points', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ChargingSession',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('booking', fields.ForeignKeyField('models.Booking', source_field='booking_id', null=True, db_constraint=True, to_field='id', related_name='charging_sessions', on_delete=OnDelete.SET_NULL)),
                ('charger', fields.ForeignKeyField('models.Charger', source_field='charger_id', db_constraint=True, to_field='id', related_name='charging_sessions', on_delete=OnDelete.CASCADE)),
                ('id_tag', fields.CharField(max_length=20)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('stopped_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('meter_start', fields.IntField()),
                ('meter_last', fields.IntField(null=True)),
                ('meter_stop', fields.IntField(null=True)),
                ('power_w', fields.FloatField(null=True)),
                ('stop_reason', fields.CharField(null=True, max_length=32)),
            ],
            options={'table': 'charging_sessions', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One OCPP transaction, whose id is the transactionId handed to the charge point.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Booking',
            name='energy_wh',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Booking',
            name='no_show_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Booking',
            name='reserved_charger_id',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Charger',
            name='charge_point',
            field=fields.ForeignKeyField('models.ChargePoint', source_field='charge_point_id', null=True, db_constraint=True, to_field='id', related_name='connectors', on_delete=OnDelete.SET_NULL),
        ),
        ops.AddField(
            model_name='Charger',
            name='connector_id',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Charger',
            name='live_status',
            field=fields.CharField(null=True, max_length=16),
        ),
        ops.AddField(
            model_name='Charger',
            name='live_status_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddConstraint(
            model_name='Charger',
            constraint=UniqueConstraint(fields=('charge_point', 'connector_id'), name=None),
        ),
        ops.AddField(
            model_name='User',
            name='id_tag',
            field=fields.CharField(null=True, default=new_id_tag, unique=True, max_length=20),
        ),
        ops.RunPython(_give_every_user_an_id_tag, reverse_code=_nothing),
    ]
