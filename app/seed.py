"""Demo data: the original design's three stations plus three that make every hour interesting
(one always open, one open overnight, one in another time zone). Running it twice adds nothing."""

from __future__ import annotations

from dataclasses import dataclass

from app.hours import HoursSpec, RegularPeriod
from app.models import Role, Station, User
from app.passwords import hash_password
from app.stations import ChargerSpec, insert_station


@dataclass(frozen=True)
class DemoUser:
    email: str
    username: str
    password: str
    role: Role


DEMO_USERS = (
    DemoUser("driver@chargeslot.example", "demo-driver", "drive-electric-42", Role.DRIVER),
    DemoUser("operator@chargeslot.example", "demo-operator", "operate-stations-42", Role.OPERATOR),
)


def daily(open_time: str, close_time: str) -> HoursSpec:
    return HoursSpec(
        regular_hours=tuple(RegularPeriod(weekday=day, begin=open_time, end=close_time) for day in range(1, 8))
    )


CCS2, TYPE2, CHADEMO = "CCS2", "TYPE2", "CHADEMO"

DEMO_STATIONS: tuple[dict[str, object], ...] = (
    dict(
        name="Mumbai Central Charging Hub",
        location="Dr Anandrao Nair Marg, Mumbai Central",
        city="Mumbai",
        latitude=18.9690,
        longitude=72.8205,
        timezone="Asia/Kolkata",
        price_per_hour=15000,
        currency="INR",
        hours=daily("08:00", "22:00"),
        chargers=[ChargerSpec(CCS2, 60), ChargerSpec(CCS2, 60), ChargerSpec(TYPE2, 22), ChargerSpec(CHADEMO, 50)],
    ),
    dict(
        name="Delhi EV Station",
        location="Connaught Place, Block A",
        city="Delhi",
        latitude=28.6315,
        longitude=77.2167,
        timezone="Asia/Kolkata",
        price_per_hour=12000,
        currency="INR",
        hours=daily("07:00", "23:00"),
        chargers=[ChargerSpec(CCS2, 50), ChargerSpec(CCS2, 50), ChargerSpec(TYPE2, 22), ChargerSpec(TYPE2, 22)],
    ),
    dict(
        name="Bangalore Tech Hub",
        location="Outer Ring Road, Marathahalli",
        city="Bangalore",
        latitude=12.9569,
        longitude=77.7011,
        timezone="Asia/Kolkata",
        price_per_hour=10000,
        currency="INR",
        hours=daily("09:00", "21:00"),
        chargers=[ChargerSpec(CCS2, 120), ChargerSpec(TYPE2, 22), ChargerSpec(TYPE2, 22)],
    ),
    dict(
        name="Pune Expressway Supercharge",
        location="Mumbai-Pune Expressway, Lonavala",
        city="Pune",
        latitude=18.7546,
        longitude=73.4062,
        timezone="Asia/Kolkata",
        price_per_hour=18000,
        currency="INR",
        hours=HoursSpec(twentyfourseven=True),
        chargers=[ChargerSpec(CCS2, 150), ChargerSpec(CCS2, 150), ChargerSpec(CHADEMO, 50)],
    ),
    dict(
        name="Chennai Night Owl Charging",
        location="Anna Salai, Teynampet",
        city="Chennai",
        latitude=13.0418,
        longitude=80.2341,
        timezone="Asia/Kolkata",
        price_per_hour=9000,
        currency="INR",
        hours=daily("20:00", "06:00"),
        chargers=[ChargerSpec(TYPE2, 22), ChargerSpec(CCS2, 60)],
    ),
    # A workplace car park on early-shift hours: closed in the Indian evening, when every Indian
    # station happens to be open, so that at any hour some station is closed.
    dict(
        name="Berlin Adlershof Ladepark",
        location="Rudower Chaussee 17",
        city="Berlin",
        latitude=52.4313,
        longitude=13.5300,
        timezone="Europe/Berlin",
        price_per_hour=1200,
        currency="EUR",
        hours=daily("06:00", "15:00"),
        chargers=[ChargerSpec(CCS2, 150), ChargerSpec(TYPE2, 11), ChargerSpec(TYPE2, 11)],
    ),
)


async def seed_demo(progress: bool = False) -> tuple[int, int]:
    """Create what is missing; return (stations created, users created)."""
    stations = users = 0
    for data in DEMO_STATIONS:
        fields = dict(data)
        if await Station.filter(name=fields["name"]).exists():
            continue
        hours = fields.pop("hours")
        chargers = fields.pop("chargers")
        assert isinstance(hours, HoursSpec) and isinstance(chargers, list)
        await insert_station(hours=hours, chargers=chargers, **fields)
        stations += 1
        if progress:
            print(f"  station: {fields['name']}")
    for demo in DEMO_USERS:
        if await User.filter(email=demo.email).exists():
            continue
        await User.create(
            email=demo.email, username=demo.username, password_hash=await hash_password(demo.password), role=demo.role
        )
        users += 1
        if progress:
            print(f"  user: {demo.email} ({demo.role})")
    return stations, users
