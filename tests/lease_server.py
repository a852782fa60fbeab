"""The web process that tests/test_payment_lease.py kills mid-payment: the real app under Hypercorn
(``hypercorn 'tests.lease_server:create()'``), with a payment provider the test holds at a gate and
a clock the test may set ahead.

``LEASE_TEST_GATE`` is a directory: each charge request is logged to ``asked`` and waits until a
file ``open`` exists there; each charge made is logged to ``charged``. ``LEASE_TEST_CLOCK_AHEAD``
(seconds) moves this process's clock ahead of the system's, to stand for time having passed.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timedelta
from pathlib import Path

from quart import Quart

from app import create_app
from app.clock import SystemClock
from app.config import load_settings
from app.models import PaymentMethod
from app.payment_provider import ProviderResult, SimulatedProvider
from app.state import state


class GatedProvider(SimulatedProvider):
    def __init__(self, gate: Path) -> None:
        self.gate = gate

    def _log(self, name: str, line: str) -> None:
        with (self.gate / name).open("a") as log:
            log.write(line + "\n")

    async def charge(self, amount: int, currency: str, method: PaymentMethod, reference: str) -> ProviderResult:
        self._log("asked", reference)
        # The gate is opened by another process: a file is what the two share.
        while not await asyncio.to_thread((self.gate / "open").exists):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        result = await super().charge(amount, currency, method, reference)
        self._log("charged", result.transaction_id)
        return result


class AheadClock(SystemClock):
    def __init__(self, ahead: timedelta) -> None:
        self.ahead = ahead

    def now(self) -> datetime:
        return super().now() + self.ahead


def create() -> Quart:
    ahead = timedelta(seconds=float(os.environ.get("LEASE_TEST_CLOCK_AHEAD", "0")))
    app = create_app(load_settings(os.environ), clock=AheadClock(ahead))
    state(app).provider = GatedProvider(Path(os.environ["LEASE_TEST_GATE"]))
    return app
