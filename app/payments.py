"""Payments: the final gate before a booking is PAID.

The checks run in the original design's order (DESIGN §5): booking exists and is the payer's →
still CONFIRMED with its hold running → station open *now* by the server clock → user active →
amount equal to the amount due to the minor unit. Only then is the provider asked to charge.

Never charged twice:

* One attempt per booking at a time. Before charging, an attempt claims the booking with a
  short-lived row (unique per user and booking), so concurrent submits, with or without keys, make
  one provider call; the others get 409 ``booking_not_payable``. A claim left by a crashed process
  lapses after ``CLAIM_LEASE``.
* The payment row and the booking's move to PAID commit in one transaction, and the move is a
  conditional update from CONFIRMED: if the booking was cancelled or expired while the provider
  was working, the charge is refunded and the payer gets 409.

``Idempotency-Key`` (IETF draft, Stripe's semantics): the key's record is inserted before any work,
so a concurrent duplicate sees it (409 ``idempotency_in_progress``); a different body under the
same key is 422 ``idempotency_key_reused``. Outcomes that reached the provider — 200 and the 402 of
a decline — are stored for ``IDEMPOTENCY_TTL`` and replayed: a decline's problem body verbatim, a
success from its payment row. Refusals before the provider (404, 409, 403, 400) are not stored:
nothing was charged, so the same key may be retried once the cause is gone (the booking paid
elsewhere, the station open again).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError

from app.bus import Bus
from app.db import write_transaction
from app.errors import (
    AmountInvalid,
    BookingNotPayable,
    Conflict,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    NotFound,
    PaymentDeclined,
    StationClosed,
    StationInactive,
    Unavailable,
    UserInactive,
    problem_body,
)
from app.events import publish_availability, quietly
from app.hours import compile_schedule
from app.models import (
    Booking,
    BookingStatus,
    IdempotencyRecord,
    Payment,
    PaymentMethod,
    PaymentStatus,
    StationStatus,
    User,
)
from app.money import format_money, parse_money
from app.payment_provider import PaymentProvider, ProviderResult
from app.stations import load_hours_spec

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL = timedelta(hours=24)
CLAIM_LEASE = timedelta(minutes=2)
_KEY_PREFIX, _CLAIM_PREFIX = "key:", "claim:booking:"


# -- money on the wire ---------------------------------------------------------------------------


def parse_amount(text: str) -> int:
    """The payment's amount in minor units; anything that is not an exact amount is a 400."""
    try:
        return parse_money(text)
    except ValueError as error:
        raise AmountInvalid(f"The amount {error}.") from None


# -- outcomes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a payment request answered: the payment on success, else the status and problem body
    of a refusal replayed under its Idempotency-Key; and whether it is a replay."""

    status: int
    payment: Payment | None = None
    problem: dict[str, Any] | None = None
    replayed: bool = False


def _declined(payment: Payment, reason: str | None) -> PaymentDeclined:
    return PaymentDeclined(
        f"The payment was declined ({reason or 'no reason given'}). The booking is still held: "
        "try again or use another payment method.",
        payment_id=payment.id,
        transaction_id=payment.transaction_id,
        reason=reason,
    )


def _stored_reply(payment: Payment, reason: str | None = None) -> tuple[int, dict[str, Any]]:
    """What an Idempotency-Key keeps of an outcome that reached the provider: the decline's problem
    body verbatim, or the id of the payment a success made (replayed from its row)."""
    if payment.status == PaymentStatus.FAILED:
        error = _declined(payment, reason)
        return error.status, problem_body(error.status, error.code, error.detail, **error.extra)
    return 200, {"payment_id": payment.id}


async def _replay(user: User, status: int, body: dict[str, Any]) -> Outcome:
    if status != 200:
        return Outcome(status, problem=body, replayed=True)
    payment = await Payment.get(id=body["payment_id"], user_id=user.id)
    return Outcome(200, payment=payment, replayed=True)


async def get_payment(user: User, payment_id: int) -> Payment:
    """Payers see their own payments, operators everyone's; anything else is a 404."""
    query = Payment.filter(id=payment_id)
    if not user.is_operator:
        query = query.filter(user_id=user.id)
    payment = await query.first()
    if payment is None:
        raise NotFound("Payment not found.")
    return payment


async def list_payments(
    user: User,
    *,
    booking_id: int | None = None,
    status: PaymentStatus | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Payment]:
    query = Payment.all() if user.is_operator else Payment.filter(user_id=user.id)
    if booking_id is not None:
        query = query.filter(booking_id=booking_id)
    if status is not None:
        query = query.filter(status=status)
    return await query.order_by("-id").offset(offset).limit(limit)


# -- paying --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Attempt:
    user: User
    booking_id: int
    method: PaymentMethod
    amount: str
    now: datetime
    provider: PaymentProvider
    bus: Bus
    key: str | None = None
    fingerprint: str | None = None
    record_id: int | None = None


def request_fingerprint(booking_id: int, payment_method: PaymentMethod, amount: str) -> str:
    body = {"booking_id": booking_id, "payment_method": PaymentMethod(payment_method).value, "amount": amount}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


async def process_payment(
    user: User,
    booking_id: int,
    payment_method: PaymentMethod,
    amount: str,
    idempotency_key: str | None = None,
    *,
    now: datetime,
    provider: PaymentProvider,
    bus: Bus,
) -> Outcome:
    """Pay a booking. Refusals raise ``DomainError``; a replayed refusal comes back as an Outcome."""
    attempt = _Attempt(user, booking_id, PaymentMethod(payment_method), amount, now, provider, bus)
    if idempotency_key is None:
        return Outcome(200, await _pay(attempt))
    fingerprint = request_fingerprint(booking_id, attempt.method, amount)
    record, replay = await _start_keyed(user, idempotency_key, fingerprint, now)
    if replay is not None:
        return replay
    assert record is not None
    try:
        payment = await _pay(replace(attempt, key=idempotency_key, fingerprint=fingerprint, record_id=record.id))
    except BaseException:
        # Declines completed the record in their transaction; anything else leaves the key reusable.
        await IdempotencyRecord.filter(id=record.id, in_progress=True).delete()
        raise
    return Outcome(200, payment)


async def _insert_record(user_id: int, key: str, fingerprint: str, expires_at: datetime) -> IdempotencyRecord | None:
    try:
        return await IdempotencyRecord.create(
            user_id=user_id, key=key, request_fingerprint=fingerprint, expires_at=expires_at
        )
    except IntegrityError:
        return None


async def _start_keyed(
    user: User, key: str, fingerprint: str, now: datetime
) -> tuple[IdempotencyRecord | None, Outcome | None]:
    """Insert the key's record (IN_PROGRESS) or answer from the one already there."""
    stored_key = _KEY_PREFIX + key
    for _ in range(3):
        record = await _insert_record(user.id, stored_key, fingerprint, now + IDEMPOTENCY_TTL)
        if record is not None:
            # The record may have been purged while a payment still carries the key.
            prior = await Payment.filter(user_id=user.id, idempotency_key=key).first()
            if prior is None:
                return record, None
            if prior.request_fingerprint != fingerprint:
                await record.delete()
                raise IdempotencyKeyReused()
            status, body = _stored_reply(prior)
            record.in_progress, record.response_status, record.response_body = False, status, body
            await record.save(update_fields=["in_progress", "response_status", "response_body"])
            return None, await _replay(user, status, body)
        existing = await IdempotencyRecord.get_or_none(user_id=user.id, key=stored_key)
        if existing is None:
            continue  # the first attempt ended without a stored outcome in between: go again
        if existing.request_fingerprint != fingerprint:
            raise IdempotencyKeyReused()
        if existing.in_progress or existing.response_status is None:
            raise IdempotencyInProgress()
        return None, await _replay(user, existing.response_status, existing.response_body)
    raise IdempotencyInProgress()


def _ensure_payable(booking: Booking, now: datetime) -> None:
    if booking.status == BookingStatus.CONFIRMED and booking.hold_expires_at and booking.hold_expires_at > now:
        return
    reasons = {
        BookingStatus.PAID: "This booking is already paid.",
        BookingStatus.CANCELLED: "This booking was cancelled.",
        BookingStatus.COMPLETED: "This booking is completed.",
    }
    raise BookingNotPayable(reasons.get(booking.status, "The hold on this booking has expired. Book again."))


async def _pay(attempt: _Attempt) -> Payment:
    user, now = attempt.user, attempt.now
    booking = await Booking.get_or_none(id=attempt.booking_id, user_id=user.id).select_related("station")
    if booking is None:
        raise NotFound("Booking not found.")
    _ensure_payable(booking, now)
    station = booking.station
    schedule = compile_schedule(station.timezone, await load_hours_spec(station))
    if not schedule.is_open(now):
        raise StationClosed("Payment blocked. Station is closed.")
    if station.status != StationStatus.ACTIVE:
        raise StationInactive()
    if not user.is_active:
        raise UserInactive()
    amount = parse_amount(attempt.amount)
    if amount != booking.amount_due:
        raise AmountInvalid(
            f"The amount {format_money(amount)} does not match the amount due, "
            f"{format_money(booking.amount_due)} {booking.currency}."
        )
    # Once the provider may be charging, finish the bookkeeping even if the client goes away.
    return await asyncio.shield(_charge_and_record(attempt, booking))


@asynccontextmanager
async def _claim(user_id: int, booking_id: int, now: datetime) -> AsyncIterator[None]:
    key = f"{_CLAIM_PREFIX}{booking_id}"
    record = await _insert_record(user_id, key, "", now + CLAIM_LEASE)
    if record is None and await IdempotencyRecord.filter(user_id=user_id, key=key, expires_at__lte=now).delete():
        record = await _insert_record(user_id, key, "", now + CLAIM_LEASE)  # the holder died
    if record is None:
        raise BookingNotPayable("A payment for this booking is already being processed.")
    try:
        yield
    finally:
        await IdempotencyRecord.filter(id=record.id).delete()


async def _charge_and_record(attempt: _Attempt, booking: Booking) -> Payment:
    provider = attempt.provider
    reference = f"booking-{booking.id}-" + (f"key-{attempt.key}" if attempt.key else f"at-{attempt.now.timestamp()}")
    async with _claim(attempt.user.id, booking.id, attempt.now):
        _ensure_payable(await Booking.get(id=booking.id), attempt.now)  # an earlier attempt may have paid
        try:
            result = await provider.charge(booking.amount_due, booking.currency, attempt.method, reference)
        except Exception:
            log.exception("payment provider failed for booking %s", booking.id)
            raise Unavailable("The payment provider could not be reached. Try again.") from None
        payment = await _record(attempt, booking, result)
    if payment is None:
        await _refund_charge(attempt, booking, result)
        raise BookingNotPayable("The booking changed while it was being paid. The charge was refunded.")
    if not result.approved:
        raise _declined(payment, result.reason)
    # Still taken, but no longer a hold that lapses: caches must stop expecting it to free up.
    await quietly(publish_availability(attempt.bus, booking.station_id, attempt.now))  # type: ignore[attr-defined]
    return payment


async def _record(attempt: _Attempt, booking: Booking, result: ProviderResult) -> Payment | None:
    """Write the outcome: the payment row, the booking's move to PAID and the key's stored answer
    commit together. None when the booking is no longer CONFIRMED (cancelled or expired)."""
    async with write_transaction():
        if result.approved:
            moved = await Booking.filter(id=booking.id, status=BookingStatus.CONFIRMED).update(
                status=BookingStatus.PAID, updated_at=attempt.now
            )
            if not moved:
                return None
        status = PaymentStatus.SUCCESS if result.approved else PaymentStatus.FAILED
        payment = await _store_payment(attempt, booking, result.transaction_id, status, keyed=True)
        if attempt.record_id is not None:
            reply_status, body = _stored_reply(payment, result.reason)
            await IdempotencyRecord.filter(id=attempt.record_id).update(
                in_progress=False, response_status=reply_status, response_body=body
            )
        return payment


async def _refund_charge(attempt: _Attempt, booking: Booking, result: ProviderResult) -> None:
    """Give back a charge that could not be applied, and keep a REFUNDED row as the audit trail."""
    refund = await attempt.provider.refund(result.transaction_id, booking.amount_due)
    if not refund.approved:
        log.error("refund of %s for booking %s refused: %s", result.transaction_id, booking.id, refund.reason)
    status = PaymentStatus.REFUNDED if refund.approved else PaymentStatus.SUCCESS
    await _store_payment(attempt, booking, result.transaction_id, status, keyed=False)


async def _store_payment(
    attempt: _Attempt, booking: Booking, transaction_id: str, status: PaymentStatus, *, keyed: bool
) -> Payment:
    """A payment row; ``keyed`` rows carry the attempt's Idempotency-Key, which is unique per user."""
    return await Payment.create(
        booking_id=booking.id,
        user_id=attempt.user.id,
        amount=booking.amount_due,
        currency=booking.currency,
        payment_method=attempt.method,
        transaction_id=transaction_id,
        status=status,
        idempotency_key=attempt.key if keyed else None,
        request_fingerprint=attempt.fingerprint if keyed else None,
    )


async def refund_booking(provider: PaymentProvider, booking: Booking) -> None:
    """Refund what was paid for ``booking``; call inside the cancelling transaction so a refusal
    leaves the booking PAID."""
    for payment in await Payment.filter(booking_id=booking.id, status=PaymentStatus.SUCCESS):
        try:
            result = await provider.refund(payment.transaction_id, payment.amount)
        except Exception:
            log.exception("refund failed for payment %s", payment.id)
            raise Unavailable("The payment provider could not be reached. Try again.") from None
        if not result.approved:
            raise Conflict(f"The payment provider refused the refund ({result.reason}). The booking is unchanged.")
        payment.status = PaymentStatus.REFUNDED
        await payment.save(update_fields=["status", "updated_at"])
