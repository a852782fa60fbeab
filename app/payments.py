"""Payments: the final gate before a booking is PAID.

The checks run in the original design's order (DESIGN §5): booking exists and is the payer's →
still CONFIRMED with its hold running → station open *now* by the server clock → user active →
amount equal to the amount due to the minor unit. Only then is the provider asked to charge.

Never charged twice:

* One attempt per booking at a time. Before anything else, an attempt claims the booking with a
  row (unique per user and booking), so concurrent submits, with or without keys, make one
  provider call; the others get 409 ``booking_not_payable``. The booking is read after the claim,
  so an attempt never acts on what an earlier one changed before it finished.
* The payment row and the booking's move to PAID commit together (on PostgreSQL one statement, on
  SQLite one transaction), and the move is a conditional update from CONFIRMED: if the booking was
  cancelled or expired while the provider was working, the charge is refunded and the payer gets
  409.

``Idempotency-Key`` (IETF draft, Stripe's semantics): the key's record is inserted before any work,
in the claim's statement, so a concurrent duplicate sees it (409 ``idempotency_in_progress``); a
different body under the same key is 422 ``idempotency_key_reused``. Outcomes that reached the
provider — 200 and the 402 of a decline — are stored for ``IDEMPOTENCY_TTL`` and replayed: a
decline's problem body verbatim, a success from its payment row. Refusals before the provider
(404, 409, 403, 400) are not stored: nothing was charged, so the same key may be retried once the
cause is gone (the booking paid elsewhere, the station open again).

In-flight records and claims are leases of ``LEASE``, renewed while their attempt runs. One whose
process died lapses, and a retry (with the same body) takes it over instead of getting 409 until
the record's 24 hours are up. The provider is still asked at most once per key: the charge's
``reference`` is the same for every attempt under one key, and providers deduplicate by it, so a
takeover after a crash that came after the charge gets the same transaction back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from tortoise import timezone

from app import history, notifications
from app.bus import Bus
from app.db import fetch, instant, is_postgres, write_transaction
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
from app.job_queue import JobQueue
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
from app.rebooking import BROKEN, what_breaks
from app.station_rows import StationRows, station_columns

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL = timedelta(hours=24)
#: How long an in-flight key record or booking claim stays taken without being renewed.
LEASE = timedelta(seconds=30)
LEASE_RENEWAL = LEASE / 3
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


def _declined(payment_id: int, transaction_id: str, reason: str | None) -> PaymentDeclined:
    return PaymentDeclined(
        f"The payment was declined ({reason or 'no reason given'}). The booking is still held: "
        "try again or use another payment method.",
        payment_id=payment_id,
        transaction_id=transaction_id,
        reason=reason,
    )


def _stored_reply(
    status: PaymentStatus, payment_id: int, transaction_id: str, reason: str | None = None
) -> tuple[int, dict[str, Any]]:
    """What an Idempotency-Key keeps of an outcome that reached the provider: the decline's problem
    body verbatim, or the id of the payment a success made (replayed from its row)."""
    if status == PaymentStatus.FAILED:
        error = _declined(payment_id, transaction_id, reason)
        return error.status, problem_body(error.status, error.code, error.detail, **error.extra)
    return 200, {"payment_id": payment_id}


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
    jobs: JobQueue | None = None
    #: What the receipt says about the slot; known once the booking is read.
    slot: notifications.Slot | None = None
    #: The key's record and the booking's claim, both leases taken by ``_take_leases``.
    record_id: int | None = None
    claim_id: int | None = None

    #: What the provider deduplicates charges by: the same for every attempt under one key, so an
    #: attempt that takes over a lapsed lease gets the charge its crashed predecessor may already
    #: have made, rather than a second one; without a key, every attempt's own.
    reference: str = field(default_factory=lambda: f"once-{secrets.token_hex(12)}")


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
    jobs: JobQueue | None = None,
) -> Outcome:
    """Pay a booking. Refusals raise ``DomainError``; a replayed refusal comes back as an Outcome."""
    attempt = _Attempt(user, booking_id, PaymentMethod(payment_method), amount, now, provider, bus, jobs=jobs)
    if idempotency_key is not None:
        fingerprint = request_fingerprint(booking_id, attempt.method, amount)
        reference = f"booking-{booking_id}-key-{idempotency_key}"
        attempt = replace(attempt, key=idempotency_key, fingerprint=fingerprint, reference=reference)
    for _ in range(3):
        leased, replay = await _take_leases(attempt)
        if replay is not None:
            return replay
        if leased is not None:
            break
        # The key's record went away between the insert and the read (its attempt ended without a
        # stored outcome): go again.
    else:
        raise IdempotencyInProgress()
    try:
        return await _pay(leased)
    except BaseException:
        # Declines completed the record in their transaction; anything else leaves the key reusable.
        if leased.record_id is not None:
            await IdempotencyRecord.filter(id=leased.record_id, in_progress=True).delete()
        raise


#: Inserts the booking's claim and the key's record (one ``_LEASE_ROW`` each), or takes over either
#: one whose lease lapsed in flight: its process died, since a running attempt renews its leases.
#: A key's record is only taken over by the same request body.
_TAKE_LEASES = """
INSERT INTO idempotency_records (user_id, key, request_fingerprint, in_progress, created_at, expires_at)
VALUES {rows}
ON CONFLICT (user_id, key) DO UPDATE
SET request_fingerprint = excluded.request_fingerprint, in_progress = TRUE, response_status = NULL,
    response_body = NULL, created_at = excluded.created_at, expires_at = excluded.expires_at
WHERE idempotency_records.in_progress AND idempotency_records.expires_at <= $2
  AND idempotency_records.request_fingerprint = excluded.request_fingerprint
RETURNING id, key"""
_LEASE_ROW = "($1, ${key}, ${fingerprint}, TRUE, $3, $4)"


async def _take_leases(attempt: _Attempt) -> tuple[_Attempt | None, Outcome | None]:
    """Lease the booking's claim (one attempt per booking at a time) and, with a key, the key's
    record, in one statement. Without the claim the booking is being paid by another attempt (409);
    without the record the key already has an answer or an attempt in flight."""
    user_id, now = attempt.user.id, attempt.now
    claim_key, stored_key = f"{_CLAIM_PREFIX}{attempt.booking_id}", f"{_KEY_PREFIX}{attempt.key}"
    params: list[Any] = [user_id, now, timezone.now(), now + LEASE, claim_key, ""]
    rows = [_LEASE_ROW.format(key=5, fingerprint=6)]
    if attempt.key is not None:
        params += [stored_key, attempt.fingerprint]
        rows.append(_LEASE_ROW.format(key=7, fingerprint=8))
    leased = {row["key"]: row["id"] for row in await fetch(_TAKE_LEASES.format(rows=", ".join(rows)), *params)}
    claim_id, record_id = leased.get(claim_key), leased.get(stored_key)
    if attempt.key is not None and record_id is None:
        await _release(claim_id)
        return None, await _answer_from_record(attempt, stored_key)
    if claim_id is None:
        await _release(record_id)
        raise BookingNotPayable("A payment for this booking is already being processed.")
    return replace(attempt, record_id=record_id, claim_id=claim_id), None


async def _answer_from_record(attempt: _Attempt, stored_key: str) -> Outcome | None:
    """The answer of the key's earlier attempt; None when its record has gone meanwhile."""
    existing = await IdempotencyRecord.get_or_none(user_id=attempt.user.id, key=stored_key)
    if existing is None:
        return None
    if existing.request_fingerprint != attempt.fingerprint:
        raise IdempotencyKeyReused()
    if existing.in_progress or existing.response_status is None:
        raise IdempotencyInProgress()
    return await _replay(attempt.user, existing.response_status, existing.response_body)


async def _release(lease_id: int | None) -> None:
    if lease_id is not None:
        await IdempotencyRecord.filter(id=lease_id).delete()


@asynccontextmanager
async def _renewing(attempt: _Attempt) -> AsyncIterator[None]:
    """Keep the attempt's leases from lapsing while the provider works, however long it takes, so
    that only an attempt whose process died can be taken over. The leases run from the attempt's
    ``now`` plus the time it has been running."""
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def renew() -> None:
        while True:
            await asyncio.sleep(LEASE_RENEWAL.total_seconds())
            until = attempt.now + timedelta(seconds=loop.time() - started) + LEASE
            try:
                await IdempotencyRecord.filter(id__in=[attempt.claim_id, attempt.record_id], in_progress=True).update(
                    expires_at=until
                )
            except Exception:  # the payment itself must not fail for it: the next tick tries again
                log.warning("could not renew the leases of a payment for booking %s", attempt.booking_id, exc_info=True)

    renewal = asyncio.create_task(renew())
    try:
        yield
    finally:
        renewal.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewal


def _ensure_payable(booking: Booking, now: datetime) -> None:
    if booking.status == BookingStatus.CONFIRMED and booking.hold_expires_at and booking.hold_expires_at > now:
        return
    reasons = {
        BookingStatus.PAID: "This booking is already paid.",
        BookingStatus.CANCELLED: "This booking was cancelled.",
        BookingStatus.COMPLETED: "This booking is completed.",
    }
    raise BookingNotPayable(reasons.get(booking.status, "The hold on this booking has expired. Book again."))


#: The booking (if it is the payer's), its station with the hours, and a payment that already
#: carries the attempt's key (its record may have been purged while the payment stays), at once.
#: Read after the claim was taken, so a payment that an earlier attempt recorded is seen.
_LOAD = f"""
SELECT b.id, b.status, b.hold_expires_at, b.amount_due, b.currency, b.station_id, b.slot_start, b.slot_end,
       (SELECT c.status FROM chargers c WHERE c.id = b.charger_id) AS charger_status,
       (SELECT c.charger_number FROM chargers c WHERE c.id = b.charger_id) AS charger_number,
       (SELECT json_build_object('id', p.id, 'status', p.status, 'transaction_id', p.transaction_id,
                                 'request_fingerprint', p.request_fingerprint)
        FROM payments p WHERE p.user_id = $2 AND p.idempotency_key = $3) AS prior,
       {station_columns("b.station_id")}
FROM (SELECT 1) AS one LEFT JOIN bookings b ON b.id = $1 AND b.user_id = $2"""


async def _pay(attempt: _Attempt) -> Outcome:
    user, now = attempt.user, attempt.now
    try:
        (row,) = await fetch(_LOAD, attempt.booking_id, user.id, attempt.key)
        if row["prior"] is not None:
            await _release(attempt.claim_id)
            return await _answer_from_prior_payment(attempt, json.loads(row["prior"]))
        if row["id"] is None:
            raise NotFound("Booking not found.")
        booking = Booking._init_from_db(
            id=row["id"],
            user_id=user.id,
            status=row["status"],
            hold_expires_at=instant(row["hold_expires_at"]),
            amount_due=row["amount_due"],
            currency=row["currency"],
            station_id=row["station_id"],
        )
        _ensure_payable(booking, now)
        loaded = StationRows.of(row)
        assert loaded is not None  # a booking's station is never deleted (RESTRICT)
        if not loaded.schedule.is_open(now):
            raise StationClosed("Payment blocked. Station is closed.")
        if loaded.station.status != StationStatus.ACTIVE:
            raise StationInactive()
        if not user.is_active:
            raise UserInactive()
        start, end = instant(row["slot_start"]), instant(row["slot_end"])
        assert start is not None and end is not None  # both NOT NULL
        broken = what_breaks(loaded.station.status, loaded.schedule, row["charger_status"], start, end, now)
        if broken is not None:
            raise BookingNotPayable(f"{BROKEN[broken]} Book another slot.")
        amount = parse_amount(attempt.amount)
        if amount != booking.amount_due:
            raise AmountInvalid(
                f"The amount {format_money(amount)} does not match the amount due, "
                f"{format_money(booking.amount_due)} {booking.currency}."
            )
    except BaseException:
        await _release(attempt.claim_id)
        raise
    station = loaded.station
    slot = notifications.Slot(
        booking.id, user.id, station.id, station.name, station.timezone, row["charger_number"], start, end,
        booking.amount_due, booking.currency,
    )  # fmt: skip
    # Once the provider may be charging, finish the bookkeeping even if the client goes away.
    return Outcome(200, await asyncio.shield(_charge_and_record(replace(attempt, slot=slot), booking)))


async def _answer_from_prior_payment(attempt: _Attempt, prior: dict[str, Any]) -> Outcome:
    """The key's answer kept on its payment row: stored on the record again, and replayed."""
    if prior["request_fingerprint"] != attempt.fingerprint:
        await _release(attempt.record_id)
        raise IdempotencyKeyReused()
    status, body = _stored_reply(PaymentStatus(prior["status"]), prior["id"], prior["transaction_id"])
    await IdempotencyRecord.filter(id=attempt.record_id).update(
        in_progress=False, response_status=status, response_body=body, expires_at=attempt.now + IDEMPOTENCY_TTL
    )
    return await _replay(attempt.user, status, body)


async def _charge_and_record(attempt: _Attempt, booking: Booking) -> Payment:
    provider = attempt.provider
    try:
        async with _renewing(attempt):
            try:
                result = await provider.charge(booking.amount_due, booking.currency, attempt.method, attempt.reference)
            except Exception:
                log.exception("payment provider failed for booking %s", booking.id)
                raise Unavailable("The payment provider could not be reached. Try again.") from None
        payment = await _record(attempt, booking, result)
    except BaseException:
        await _release(attempt.claim_id)
        raise
    if payment is None:
        # An attempt that took over this one's lapsed lease got the same charge and recorded it.
        if (taken_over := await Payment.get_or_none(transaction_id=result.transaction_id)) is not None:
            return taken_over
        await _refund_charge(attempt, booking, result)
        raise BookingNotPayable("The booking changed while it was being paid. The charge was refunded.")
    if not result.approved:
        raise _declined(payment.id, payment.transaction_id, result.reason)
    # Still taken, but no longer a hold that lapses: caches must stop expecting it to free up.
    await quietly(publish_availability(attempt.bus, booking.station_id, attempt.now))  # type: ignore[attr-defined]
    if attempt.jobs is not None:
        await quietly(notifications.deliver_soon(attempt.jobs, f"paid:{booking.id}"))
    return payment


def _paid_lines(attempt: _Attempt, transaction_id: str) -> tuple[str, notifications.Note]:
    """The history line and the receipt of an approved payment."""
    assert attempt.slot is not None
    detail = f"Paid {attempt.slot.money} by {attempt.method.value} ({transaction_id})."
    return detail, notifications.payment_receipt(attempt.slot, transaction_id, attempt.now)


async def _record(attempt: _Attempt, booking: Booking, result: ProviderResult) -> Payment | None:
    """Write the outcome: the payment row, the booking's move to PAID, the key's stored answer and
    the claim's release commit together. None when the booking is no longer CONFIRMED (cancelled
    or expired)."""
    if result.approved and is_postgres():
        return await _record_approval_in_one_statement(attempt, booking, result)
    async with write_transaction():
        if result.approved:
            moved = await Booking.filter(id=booking.id, status=BookingStatus.CONFIRMED).update(
                status=BookingStatus.PAID, updated_at=attempt.now
            )
            if not moved:
                return None
        status = PaymentStatus.SUCCESS if result.approved else PaymentStatus.FAILED
        payment = await _store_payment(attempt, booking, result.transaction_id, status, keyed=True)
        if result.approved:
            detail, receipt = _paid_lines(attempt, result.transaction_id)
            await history.record(booking.id, history.PAID, detail, attempt.now)
            await notifications.write([receipt])
        if attempt.record_id is not None:
            reply_status, body = _stored_reply(status, payment.id, payment.transaction_id, result.reason)
            await IdempotencyRecord.filter(id=attempt.record_id).update(
                in_progress=False,
                response_status=reply_status,
                response_body=body,
                expires_at=attempt.now + IDEMPOTENCY_TTL,
            )
        await _release(attempt.claim_id)
        return payment


#: ``_record`` for an approved charge as one statement, so that it needs no transaction around it.
_RECORD_APPROVAL = f"""
WITH moved AS (
    UPDATE bookings SET status = '{BookingStatus.PAID}', updated_at = $1
    WHERE id = $2 AND status = '{BookingStatus.CONFIRMED}'
    RETURNING id
), payment AS (
    INSERT INTO payments (booking_id, user_id, amount, currency, payment_method, transaction_id, status,
                          idempotency_key, request_fingerprint, created_at, updated_at)
    SELECT id, $3, $4, $5, $6, $7, '{PaymentStatus.SUCCESS}', $8, $9, $10, $10 FROM moved
    RETURNING id
), answered AS (
    UPDATE idempotency_records SET in_progress = FALSE, response_status = 200,
           response_body = jsonb_build_object('payment_id', payment.id), expires_at = $11
    FROM payment WHERE idempotency_records.id = $12
), released AS (
    DELETE FROM idempotency_records WHERE id = $13
), event AS (
    INSERT INTO {history.INSERT_COLUMNS} SELECT id, '{history.PAID}', $14, $1 FROM moved
), receipt AS (
    INSERT INTO {notifications.INSERT_COLUMNS}
    SELECT $3, $15, id, $16, $17, $18, $1, $1, $15::varchar || ':' || id || ':' || $19, 0 FROM moved
)
SELECT id FROM payment"""


async def _record_approval_in_one_statement(
    attempt: _Attempt, booking: Booking, result: ProviderResult
) -> Payment | None:
    created_at = timezone.now()
    detail, receipt = _paid_lines(attempt, result.transaction_id)
    rows = await fetch(
        _RECORD_APPROVAL,
        attempt.now, booking.id, attempt.user.id, booking.amount_due, booking.currency, attempt.method,
        result.transaction_id, attempt.key, attempt.fingerprint, created_at, attempt.now + IDEMPOTENCY_TTL,
        attempt.record_id, attempt.claim_id,
        detail, receipt.kind.value, receipt.slot.station_id, receipt.title, receipt.body, attempt.now.isoformat(),
    )  # fmt: skip
    if not rows:
        return None
    return Payment._init_from_db(
        id=rows[0]["id"],
        booking_id=booking.id,
        user_id=attempt.user.id,
        amount=booking.amount_due,
        currency=booking.currency,
        payment_method=attempt.method,
        transaction_id=result.transaction_id,
        status=PaymentStatus.SUCCESS,
        idempotency_key=attempt.key,
        request_fingerprint=attempt.fingerprint,
        created_at=created_at,
        updated_at=created_at,
    )


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
