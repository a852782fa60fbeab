"""The payment provider behind a small interface, and the simulated one the service ships with.

Handlers and the payments module only ever talk to ``PaymentProvider``; a real acquirer (a UPI
gateway, a card processor) is one more class with these two methods, set as the services'
``provider``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Protocol

from app.models import PaymentMethod

#: Minor units that make the simulated provider decline a WALLET payment ("insufficient funds").
DECLINE_MINOR_UNITS = 13


@dataclass(frozen=True)
class ProviderResult:
    approved: bool
    transaction_id: str
    reason: str | None = None


class PaymentProvider(Protocol):
    async def charge(self, amount: int, currency: str, method: PaymentMethod, reference: str) -> ProviderResult:
        """Charge ``amount`` minor units; ``reference`` is stable for one attempt so a real provider
        can deduplicate a retried call."""
        ...

    async def refund(self, transaction_id: str, amount: int) -> ProviderResult: ...


def new_transaction_id() -> str:
    return f"TXN_{secrets.token_hex(10).upper()}"


class SimulatedProvider:
    """Deterministic outcomes, so tests and demos can walk every path without a real acquirer.

    Every charge is approved except a ``WALLET`` payment whose amount ends in ``.13`` (13 minor
    units, e.g. ``"60.13"``), which is declined with reason ``insufficient_funds``; paying the same
    booking with ``UPI`` or ``CARD`` then succeeds. Refunds always succeed.
    """

    async def charge(self, amount: int, currency: str, method: PaymentMethod, reference: str) -> ProviderResult:
        transaction_id = new_transaction_id()
        if method == PaymentMethod.WALLET and amount % 100 == DECLINE_MINOR_UNITS:
            return ProviderResult(False, transaction_id, "insufficient_funds")
        return ProviderResult(True, transaction_id)

    async def refund(self, transaction_id: str, amount: int) -> ProviderResult:
        return ProviderResult(True, new_transaction_id())
