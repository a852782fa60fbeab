"""Payments API (DESIGN §5): pay a booking, once, and read payments back."""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from quart import Blueprint, Response, json, request
from quart_schema import (
    document_headers,
    document_response,
    security_scheme_blueprint,
    validate_querystring,
    validate_request,
    validate_response,
)

from app import payments
from app.auth import authorize
from app.blueprints.bookings import check_user_id
from app.errors import PROBLEM_JSON, ValidationFailed
from app.models import Payment, PaymentMethod, PaymentStatus
from app.money import format_money
from app.state import state
from app.wire import Id, Offset, Problem, StrictId, signed_in

blueprint = Blueprint("payments", __name__, url_prefix="/api/payments")
security_scheme_blueprint(blueprint, signed_in())

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY = re.compile(r"[\x21-\x7e]{1,200}")

PAYMENT_EXAMPLE: dict[str, Any] = {
    "payment_id": 17,
    "booking_id": 42,
    "transaction_id": "TXN_5F1C0A9B3E7D2C4A6B80",
    "amount": "250.00",
    "currency": "INR",
    "payment_method": "UPI",
    "status": "SUCCESS",
    "created_at": "2026-12-02T05:02:11+00:00",
}


class PaymentIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"booking_id": 42, "payment_method": "UPI", "amount": "250.00"},
                {"booking_id": 43, "payment_method": "WALLET", "amount": "60.13"},
            ]
        }
    )

    booking_id: StrictId
    payment_method: PaymentMethod
    amount: StrictStr = Field(
        max_length=32,
        description='Decimal string in major units that equals the booking\'s amount_due ("250", "250.0" and '
        '"250.00" are all fine). A JSON number is refused with 422.',
    )
    user_id: StrictInt | None = Field(
        None, description="Optional and never needed: if sent it must be the signed-in user's id, else 403."
    )


class PaymentOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [PAYMENT_EXAMPLE]})

    payment_id: int
    booking_id: int
    transaction_id: str
    amount: str
    currency: str
    payment_method: PaymentMethod
    status: PaymentStatus
    created_at: str


def payment_out(payment: Payment) -> PaymentOut:
    return PaymentOut(
        payment_id=payment.id,
        booking_id=payment.booking_id,  # type: ignore[attr-defined]
        transaction_id=payment.transaction_id,
        amount=format_money(payment.amount),
        currency=payment.currency,
        payment_method=PaymentMethod(payment.payment_method),
        status=PaymentStatus(payment.status),
        created_at=payment.created_at.astimezone(UTC).isoformat(),
    )


class DeclinedProblem(Problem):
    """The provider declined: the payment is stored as FAILED and the booking stays payable."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "about:blank",
                    "title": "Payment Required",
                    "status": 402,
                    "code": "payment_declined",
                    "detail": "The payment was declined (insufficient_funds). The booking is still held: "
                    "try again or use another payment method.",
                    "payment_id": 18,
                    "transaction_id": "TXN_0D6E2B7A91C45F3E8A12",
                    "reason": "insufficient_funds",
                }
            ]
        }
    )

    payment_id: int
    transaction_id: str
    reason: str | None


class IdempotencyHeaders(BaseModel):
    idempotency_key: str | None = Field(
        None,
        description="Optional, 1-200 visible ASCII characters (a UUID is ideal), kept per user for 24 hours. "
        "A retry with the same key and body replays the stored answer without charging again.",
    )


class PaymentQuery(BaseModel):
    booking_id: Id | None = None
    status: PaymentStatus | None = None
    limit: int = Field(50, ge=1, le=200)
    offset: Offset = 0


def _idempotency_key() -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not _KEY.fullmatch(key):
        raise ValidationFailed(
            [{"loc": ["header", IDEMPOTENCY_HEADER], "msg": "must be 1-200 visible ASCII characters"}]
        )
    return key


@blueprint.post("/process")
@validate_request(PaymentIn)
@validate_response(PaymentOut)
@document_headers(IdempotencyHeaders)
@document_response(Problem, 400)
@document_response(DeclinedProblem, 402)
@document_response(Problem, 403)
@document_response(Problem, 404)
@document_response(Problem, 409)
@document_response(Problem, 422)
async def process(data: PaymentIn) -> Response | tuple[PaymentOut, int, dict[str, str]]:
    """Pay a held booking: the final gate before it is PAID.

    Get the amount from `GET /api/bookings/{id}/quote` and send it back exactly. Checked in this
    order: request format (422) → signed in (401) → the booking exists and is yours (404), is
    CONFIRMED with its hold still running (409 `booking_not_payable`) → station open now by the
    server clock (403 `station_closed`, "Payment blocked. Station is closed.") → station ACTIVE
    (403 `station_inactive`) → your account active (403 `user_inactive`) → amount equal to
    `amount_due` to the minor unit (400 `amount_invalid`). On success the payment is recorded and
    the booking becomes PAID in the same transaction. A booking is paid at most once: concurrent
    submits for one booking make one charge and the rest get 409 `booking_not_payable`.

    **Idempotency-Key.** Send a fresh key (a UUID) with each new payment and the same key when
    retrying it. Same key and same body: the stored answer is replayed (same `transaction_id`,
    header `Idempotent-Replayed: true`), nothing is charged again. Same key, different body: 422
    `idempotency_key_reused`. Same key while the first request is still running: 409
    `idempotency_in_progress`. Answers that reached the payment provider (200, and 402 for a
    decline) are stored for 24 hours; refusals before it (400, 403, 404, 409) are not, so the key
    can be retried once the cause is fixed.

    **Declines.** The provider's refusal is 402 `payment_declined` with `payment_id`,
    `transaction_id` and `reason`; the payment is stored as FAILED and the booking stays payable.
    The simulated provider this service ships with approves everything except a `WALLET` payment
    whose amount ends in `.13` (for example `"60.13"`), declined as `insufficient_funds`; paying the
    same booking by `UPI` or `CARD` then succeeds.
    """
    key = _idempotency_key()
    user = await authorize()
    check_user_id(data.user_id, user)
    services = state()
    outcome = await payments.process_payment(
        user,
        data.booking_id,
        data.payment_method,
        data.amount,
        key,
        now=services.clock.now(),
        provider=services.provider,
        bus=services.bus,
        jobs=services.jobs,
    )
    headers = {REPLAYED_HEADER: "true"} if outcome.replayed else {}
    if outcome.payment is not None:
        return payment_out(outcome.payment), 200, headers
    return Response(json.dumps(outcome.problem), status=outcome.status, content_type=PROBLEM_JSON, headers=headers)


@blueprint.get("")
@validate_querystring(PaymentQuery)
@validate_response(list[PaymentOut])
async def list_payments(query_args: PaymentQuery) -> list[PaymentOut]:
    """Your payments, newest first; operators see everyone's."""
    user = await authorize()
    found = await payments.list_payments(
        user,
        booking_id=query_args.booking_id,
        status=query_args.status,
        limit=query_args.limit,
        offset=query_args.offset,
    )
    return [payment_out(payment) for payment in found]


@blueprint.get("/<int:payment_id>")
@validate_response(PaymentOut)
async def get_payment(payment_id: int) -> PaymentOut:
    """One payment. Somebody else's payment is a 404."""
    user = await authorize()
    return payment_out(await payments.get_payment(user, payment_id))
