"""Real concurrency against PostgreSQL: many requests at once through the running app.

These are the guarantees that matter most (no charger booked twice, no booking charged twice), so
they are shown with concurrent requests rather than argued. SQLite serialises writers by design;
the claims are proven where they can fail.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from quart import Quart
from tortoise import connections

from app.bookings import HOLD_LIMIT
from app.models import Payment, PaymentMethod, PaymentStatus, Role
from app.payment_provider import ProviderResult, SimulatedProvider
from app.state import state
from tests.conftest import ApiClient, Backend
from tests.helpers import book, ok, pay, signed_in
from tests.helpers import make_kolkata_station as make_station

OVERLAPPING_ACTIVE_BOOKINGS = """
SELECT count(*) AS overlaps
FROM bookings a JOIN bookings b
  ON a.charger_id = b.charger_id AND a.id < b.id
 AND tstzrange(a.slot_start, a.slot_end, '[)') && tstzrange(b.slot_start, b.slot_end, '[)')
WHERE a.status IN ('CONFIRMED', 'PAID') AND b.status IN ('CONFIRMED', 'PAID')
"""


@pytest.fixture
def postgres(db: Backend) -> Backend:
    if not db.is_postgres:
        pytest.skip("concurrency guarantees are proven on PostgreSQL")
    return db


async def overlaps() -> int:
    rows = await connections.get("default").execute_query_dict(OVERLAPPING_ACTIVE_BOOKINGS)
    return int(rows[0]["overlaps"])


async def outcomes(responses: list[Any]) -> Counter[tuple[int, str | None]]:
    counted: Counter[tuple[int, str | None]] = Counter()
    for response in responses:
        body = await response.get_json()
        counted[(response.status_code, body.get("code") if response.status_code != 200 else None)] += 1
    return counted


async def drivers(app: Quart, make_user: Any, count: int) -> list[Any]:
    users = [await make_user(Role.DRIVER) for _ in range(count)]
    return [await signed_in(ApiClient(app), user) for user in users]


async def test_fifty_drivers_racing_for_the_only_charger_get_one_booking(app: Quart, postgres, make_user) -> None:
    station = await make_station(chargers=("CCS2",))
    clients = await drivers(app, make_user, 50)
    responses = await asyncio.gather(*(book(client, station) for client in clients))
    assert await outcomes(responses) == {(200, None): 1, (409, "no_charger_available"): 49}
    assert await overlaps() == 0


async def test_racing_drivers_fill_every_free_charger_and_no_more(app: Quart, postgres, make_user) -> None:
    # Everyone first picks charger 1; the losers retry once and take charger 2.
    station = await make_station(chargers=("CCS2", "CCS2"))
    clients = await drivers(app, make_user, 30)
    responses = await asyncio.gather(*(book(client, station) for client in clients))
    assert await outcomes(responses) == {(200, None): 2, (409, "no_charger_available"): 28}
    won = [await r.get_json() for r in responses if r.status_code == 200]
    assert sorted(b["charger_number"] for b in won) == [1, 2]
    assert await overlaps() == 0


class CountingProvider(SimulatedProvider):
    def __init__(self) -> None:
        self.charges = 0

    async def charge(self, amount: int, currency: str, method: PaymentMethod, reference: str) -> ProviderResult:
        self.charges += 1
        await asyncio.sleep(0.01)  # a provider takes a moment: let the others pile up meanwhile
        return await super().charge(amount, currency, method, reference)


@pytest.fixture
def counting_provider(app: Quart) -> Any:
    app_state = state(app)
    original, app_state.provider = app_state.provider, CountingProvider()
    yield app_state.provider
    app_state.provider = original


@pytest.mark.parametrize("keys", ["none", "shared", "distinct"])
async def test_twenty_concurrent_submits_charge_a_booking_once(
    app: Quart, postgres, make_user, counting_provider: CountingProvider, keys: str
) -> None:
    station = await make_station(price=10_000)
    (client,) = await drivers(app, make_user, 1)
    held = await ok(await book(client, station))

    def key(n: int) -> dict[str, str]:
        return {"none": {}, "shared": {"key": "pay-once"}, "distinct": {"key": f"pay-{n}"}}[keys]

    responses = await asyncio.gather(*(pay(client, held, **key(n)) for n in range(20)))
    counted = await outcomes(responses)
    paid = [await r.get_json() for r in responses if r.status_code == 200]
    assert paid and len({p["transaction_id"] for p in paid}) == 1
    if keys == "shared":
        # Replays (after the first finished) and in-flight refusals; never a second charge.
        assert set(counted) <= {(200, None), (409, "idempotency_in_progress")}
    else:
        assert counted == {(200, None): 1, (409, "booking_not_payable"): 19}
    assert counting_provider.charges == 1
    assert await Payment.filter(booking_id=held["booking_id"], status=PaymentStatus.SUCCESS).count() == 1


async def test_one_driver_racing_ten_bookings_gets_no_more_than_the_hold_limit(app: Quart, postgres, make_user) -> None:
    station = await make_station()
    (client,) = await drivers(app, make_user, 1)
    slots = [f"2026-12-02T{hour}:00:00" for hour in range(11, 21)]
    responses = await asyncio.gather(*(book(client, station, slot=slot) for slot in slots))
    assert await outcomes(responses) == {(200, None): HOLD_LIMIT, (409, "hold_limit_reached"): len(slots) - HOLD_LIMIT}
