"""No double booking, enforced by PostgreSQL itself.

Two active bookings (CONFIRMED or PAID) of one charger may not overlap in time. The ranges are
half-open, so back-to-back slots are fine. SQLite has no exclusion constraints: there the booking
code takes the write lock (BEGIN IMMEDIATE) before it checks and inserts.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

FORWARD = (
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
    "ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap EXCLUDE USING gist "
    "(charger_id WITH =, tstzrange(slot_start, slot_end, '[)') WITH &&) "
    "WHERE (status IN ('CONFIRMED', 'PAID'))",
    "ALTER TABLE bookings ADD CONSTRAINT bookings_slot_order CHECK (slot_end > slot_start)",
    "ALTER TABLE payments ADD CONSTRAINT payments_amount_positive CHECK (amount > 0)",
)
BACKWARD = (
    "ALTER TABLE payments DROP CONSTRAINT IF EXISTS payments_amount_positive",
    "ALTER TABLE bookings DROP CONSTRAINT IF EXISTS bookings_slot_order",
    "ALTER TABLE bookings DROP CONSTRAINT IF EXISTS bookings_no_overlap",
)


def _on_postgres(statements):
    async def run(apps, schema_editor):
        if schema_editor.client.capabilities.dialect != "postgres":
            return
        for statement in statements:
            await schema_editor.client.execute_script(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("models", "0001_initial")]

    operations = [
        ops.RunPython(_on_postgres(FORWARD), reverse_code=_on_postgres(BACKWARD)),
    ]
