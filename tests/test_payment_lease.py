"""An Idempotency-Key whose attempt died is a lease that lapses: a retry with the same key takes it
over and is charged at most once, because the provider deduplicates by the attempt's reference."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from app.models import Booking, BookingStatus, Payment, PaymentMethod, PaymentStatus
from app.payment_provider import ProviderResult, SimulatedProvider
from app.payments import LEASE
from tests.conftest import ApiClient
from tests.test_bookings import problem
from tests.test_payments import held, pay, use_provider

__all__ = ["held", "use_provider"]  # the fixtures


class ChargesThenHangs(SimulatedProvider):
    """Charges, then never answers the first caller: what an attempt whose process died right after
    the charge looks like from outside. Later callers get their answer."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.charged = asyncio.Event()
        self.hang = asyncio.Event()

    async def charge(self, amount: int, currency: str, method: PaymentMethod, reference: str) -> ProviderResult:
        self.calls.append(reference)
        result = await super().charge(amount, currency, method, reference)
        if len(self.calls) == 1:
            self.charged.set()
            await self.hang.wait()
        return result


async def test_a_retry_after_the_lease_lapsed_gets_the_charge_the_dead_attempt_made(
    driver_client: ApiClient, held: dict[str, Any], use_provider: Any, clock: Any
) -> None:
    provider = use_provider(ChargesThenHangs())
    dead = asyncio.create_task(pay(driver_client, held, key="pay-1"))
    await asyncio.wait_for(provider.charged.wait(), 5)
    await problem(await pay(driver_client, held, key="pay-1"), 409, "idempotency_in_progress")

    clock.advance(LEASE + timedelta(seconds=1))
    retried = await pay(driver_client, held, key="pay-1")
    assert retried.status_code == 200, await retried.get_json()
    paid = await retried.get_json()
    first_charge = await provider.charge(0, "INR", PaymentMethod.UPI, provider.calls[0])  # what the provider kept
    assert paid["transaction_id"] == first_charge.transaction_id
    assert [p.status for p in await Payment.all()] == [PaymentStatus.SUCCESS]
    assert (await Booking.get(id=held["booking_id"])).status == BookingStatus.PAID

    # Had the first attempt only been slow, its late answer is the same payment, not a refund.
    provider.hang.set()
    late = await dead
    assert (await late.get_json())["transaction_id"] == paid["transaction_id"]
    assert [p.status for p in await Payment.all()] == [PaymentStatus.SUCCESS]


async def test_a_lapsed_lease_is_not_taken_over_with_another_body(
    driver_client: ApiClient, held: dict[str, Any], use_provider: Any, clock: Any
) -> None:
    provider = use_provider(ChargesThenHangs())
    dead = asyncio.create_task(pay(driver_client, held, key="pay-1"))
    await asyncio.wait_for(provider.charged.wait(), 5)
    clock.advance(LEASE + timedelta(seconds=1))
    await problem(await pay(driver_client, held, key="pay-1", method="CARD"), 422, "idempotency_key_reused")
    provider.hang.set()
    assert (await dead).status_code == 200
    assert len(provider.calls) == 1
