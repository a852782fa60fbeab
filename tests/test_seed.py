from __future__ import annotations

from datetime import timedelta

from app.hours import compile_schedule
from app.models import Charger, Role, Station, User
from app.seed import DEMO_STATIONS, seed_demo
from app.stations import load_hours_spec
from tests.conftest import Backend


async def test_demo_seed_is_idempotent_and_has_a_driver_and_an_operator(db: Backend) -> None:
    assert await seed_demo() == (len(DEMO_STATIONS), 2)
    assert await seed_demo() == (0, 0)
    assert await Station.all().count() == len(DEMO_STATIONS)
    assert await Charger.filter(station__name="Mumbai Central Charging Hub").count() == 4
    assert {u.role for u in await User.all()} == {Role.DRIVER, Role.OPERATOR}


async def test_demo_stations_are_open_and_closed_at_every_hour(db: Backend, clock) -> None:
    await seed_demo()
    schedules = [compile_schedule(s.timezone, await load_hours_spec(s)) for s in await Station.all()]
    start = clock.now()
    for hour in range(24):
        at = start + timedelta(hours=hour)
        states = {schedule.is_open(at) for schedule in schedules}
        assert states == {True, False}, f"at {at} every demo station is {'open' if True in states else 'closed'}"
