"""The payment provider behind a small interface, and the simulated one the service ships with.

Handlers and the payments module only ever talk to ``PaymentProvider``; a real acquirer (a UPI
gateway, a card processor) is one more class with these two methods, set as the services'
``provider``.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
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
        """Charge ``amount`` minor units, once per ``reference``: asked again with a reference it has
        seen, a provider answers with that charge's result instead of charging again (acquirers
        call this an idempotency key or merchant reference)."""
        ...

    async def refund(self, transaction_id: str, amount: int) -> ProviderResult: ...


def new_transaction_id() -> str:
    return f"TXN_{secrets.token_hex(10).upper()}"


class SimulatedProvider:
    """Deterministic outcomes, so tests and demos can walk every path without a real acquirer.

    Every charge is approved except a ``WALLET`` payment whose amount ends in ``.13`` (13 minor
    units, e.g. ``"60.13"``), which is declined with reason ``insufficient_funds``; paying the same
    booking with ``UPI`` or ``CARD`` then succeeds. Refunds always succeed. Like a real acquirer it
    answers a repeated ``reference`` with its first result (remembering the latest
    ``REMEMBERED_REFERENCES``, in this process).
    """

    REMEMBERED_REFERENCES = 100_000

    @cached_property
    def _charged(self) -> OrderedDict[str, ProviderResult]:
        """Results by reference (a property, so subclasses need not call ``__init__``)."""
        return OrderedDict()

    async def charge(self, amount: int, currency: str, method: PaymentMethod, reference: str) -> ProviderResult:
        if (known := self._charged.get(reference)) is not None:
            return known
        transaction_id = new_transaction_id()
        if method == PaymentMethod.WALLET and amount % 100 == DECLINE_MINOR_UNITS:
            result = ProviderResult(False, transaction_id, "insufficient_funds")
        else:
            result = ProviderResult(True, transaction_id)
        self._charged[reference] = result
        if len(self._charged) > self.REMEMBERED_REFERENCES:
            self._charged.popitem(last=False)
        return result

    async def refund(self, transaction_id: str, amount: int) -> ProviderResult:
        return ProviderResult(True, new_transaction_id())
