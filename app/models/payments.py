from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model


class PaymentMethod(StrEnum):
    UPI = "UPI"
    CARD = "CARD"
    WALLET = "WALLET"


class PaymentStatus(StrEnum):
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"
    #: The booking was cancelled by the system; the refund is owed and retried until it goes through.
    REFUND_PENDING = "REFUND_PENDING"


class Payment(Model):
    id = fields.IntField(primary_key=True)
    booking: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Booking", related_name="payments", on_delete=fields.RESTRICT
    )
    user: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.User", related_name="payments", on_delete=fields.RESTRICT
    )
    amount = fields.IntField()  # minor units
    currency = fields.CharField(max_length=3)
    payment_method = fields.CharEnumField(PaymentMethod, max_length=16)
    transaction_id = fields.CharField(max_length=64, unique=True)
    status = fields.CharEnumField(PaymentStatus, max_length=16)
    idempotency_key = fields.CharField(max_length=255, null=True)
    request_fingerprint = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "payments"
        unique_together = (("user", "idempotency_key"),)


class IdempotencyRecord(Model):
    """What a user's Idempotency-Key has produced, so a retry replays it instead of charging again.

    The row is inserted (state IN_PROGRESS) before any work starts; the unique (user, key) pair is
    what makes a concurrent second request see it and answer 409 rather than race. In flight,
    ``expires_at`` is a short lease its attempt renews, so a retry can take over the record of an
    attempt whose process died; once answered, it is when the stored answer is purged. A booking's
    payment claim is a row of this table too (``claim:booking:{id}``), leased the same way.
    """

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.User", related_name="idempotency_records", on_delete=fields.CASCADE
    )
    key = fields.CharField(max_length=255)
    request_fingerprint = fields.CharField(max_length=64)
    in_progress = fields.BooleanField(default=True)
    response_status = fields.IntField(null=True)
    response_body: fields.Field[Any] = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "idempotency_records"
        unique_together = (("user", "key"),)
