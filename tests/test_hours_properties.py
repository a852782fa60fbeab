"""Opening hours against a brute-force oracle, over random schedules in zones with awkward clocks.

The oracle walks UTC minute by minute, reads the station's wall clock at each minute and decides
from the rules alone. DST is handled by one observation: a wall time W is reached at the first
instant at which the clock has shown W or later. A time in a spring-forward gap is therefore
reached when the gap ends, and a time in a fall-back fold at its first occurrence. So the station
is inside a regular period [B, E) of wall time exactly when the latest reading the clock has shown
so far lies in [B, E), and the oracle only needs to track that running maximum.

Every instant used is on a whole minute, and every zone below has whole-minute offsets and
transitions in the years drawn, so stepping by minutes misses nothing.
"""

from __future__ import annotations

import functools
import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app.hours import ExceptionalPeriod, HoursSpec, RegularPeriod, Schedule, compile_schedule
from app.hours_input import parse_hours

ZONES = [
    "UTC",
    "Europe/Berlin",
    "Europe/London",
    "Europe/Dublin",  # negative DST in the tz database: "standard" time is the summer one
    "Europe/Moscow",  # permanent offset changes in 2011 and 2014
    "Europe/Chisinau",
    "America/New_York",
    "America/Los_Angeles",
    "America/St_Johns",  # -03:30
    "America/Havana",  # changes at midnight: 00:00 is skipped or repeated
    "America/Santiago",
    "America/Asuncion",  # falls back from 00:00 to 23:00 of the previous day
    "America/Sao_Paulo",
    "America/Caracas",
    "Asia/Kolkata",
    "Asia/Kathmandu",  # +05:45
    "Asia/Tehran",
    "Asia/Beirut",
    "Asia/Gaza",
    "Asia/Pyongyang",
    "Africa/Casablanca",  # DST suspended every Ramadan
    "Australia/Lord_Howe",  # 30-minute DST
    "Australia/Adelaide",
    "Pacific/Chatham",  # +12:45 / +13:45
    "Pacific/Apia",  # skipped 30 December 2011 entirely
    "Pacific/Kiritimati",
    "Antarctica/Troll",  # 2-hour DST
]

MINUTE = timedelta(minutes=1)
FIRST = datetime(2000, 1, 1, tzinfo=UTC)
LAST = datetime(2037, 12, 1, tzinfo=UTC)
WINDOW = 3 * 24 * 60  # minutes checked per example
HISTORY = 12 * 60  # minutes of clock readings before the window, more than any backward change
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- the oracle -------------------------------------------------------------------------------


def wall_periods(spec: HoursSpec, day: date) -> list[tuple[datetime, datetime]]:
    """The regular periods that start on local ``day``, as wall-clock intervals."""
    out = []
    for period in spec.regular_hours:
        if period.weekday == day.isoweekday():
            begin = datetime.combine(day, time.fromisoformat(period.begin))
            if period.end == "24:00":
                end = datetime.combine(day + timedelta(days=1), time(0))
            else:
                end = datetime.combine(day, time.fromisoformat(period.end))
                if end <= begin:  # overnight, or equal times meaning 24 hours
                    end += timedelta(days=1)
            out.append((begin, end))
    return out


def oracle(zone: str, spec: HoursSpec, start: datetime, minutes: int) -> list[bool]:
    """Open or closed at each minute of ``[start, start + minutes)``."""
    tz = ZoneInfo(zone)
    periods_on = functools.cache(lambda day: wall_periods(spec, day))
    latest_reading = datetime.min
    states = []
    for i in range(-HISTORY, minutes):
        instant = start + i * MINUTE
        reading = instant.astimezone(tz).replace(tzinfo=None)
        latest_reading = max(latest_reading, reading)
        if i < 0:
            continue
        if any(p.begin <= instant < p.end for p in spec.exceptional_closings):
            states.append(False)
        elif any(p.begin <= instant < p.end for p in spec.exceptional_openings) or spec.twentyfourseven:
            states.append(True)
        else:
            today = latest_reading.date()
            candidates = periods_on(today) + periods_on(today - timedelta(days=1))
            states.append(any(begin <= latest_reading < end for begin, end in candidates))
    return states


# -- random schedules near clock changes ------------------------------------------------------


@functools.cache
def clock_changes(zone: str) -> tuple[datetime, ...]:
    """UTC instants where the zone's offset changes, found by daily sampling and bisection."""
    tz = ZoneInfo(zone)
    changes = []
    day = FIRST
    offset = day.astimezone(tz).utcoffset()
    while day < LAST:
        following = day + timedelta(days=1)
        new_offset = following.astimezone(tz).utcoffset()
        if new_offset != offset:
            lo, hi = 0, 24 * 60  # minutes after ``day``: old offset at lo, new one at hi
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if (day + mid * MINUTE).astimezone(tz).utcoffset() == offset:
                    lo = mid
                else:
                    hi = mid
            changes.append(day + hi * MINUTE)
        day, offset = following, new_offset
    return tuple(changes)


def minutes_between(lo: datetime, hi: datetime) -> st.SearchStrategy[datetime]:
    return st.integers(0, (hi - lo) // MINUTE).map(lambda n: lo + n * MINUTE)


clock_times = st.one_of(
    st.sampled_from(["00:00", "00:30", "01:00", "02:00", "02:30", "03:00", "06:00", "22:00", "23:00", "23:30"]),
    st.integers(0, 24 * 60 - 1).map(lambda m: f"{m // 60:02d}:{m % 60:02d}"),
)
regular_periods = st.builds(
    RegularPeriod,
    weekday=st.integers(1, 7),
    begin=clock_times,
    end=st.one_of(clock_times, st.just("24:00")),
)


def wall_times_near(change: datetime, tz: ZoneInfo) -> list[tuple[int, str]]:
    """(weekday, "HH:MM") wall times around a clock change, including those it skips or repeats."""
    before = (change - MINUTE).astimezone(tz).replace(tzinfo=None) + MINUTE
    after = change.astimezone(tz).replace(tzinfo=None)
    wall, last = min(before, after) - timedelta(hours=1), max(before, after) + timedelta(hours=1)
    out = []
    while wall <= last:
        out.append((wall.isoweekday(), f"{wall:%H:%M}"))
        wall += 5 * MINUTE
    return out


@st.composite
def cases(draw: st.DrawFn) -> tuple[Schedule, datetime]:
    """A compiled random schedule and the start of a window that often holds a clock change.

    Near a change, some periods begin or end at wall times around it, so that gaps and folds
    fall inside periods, at their edges and between them.
    """
    zone = draw(st.sampled_from(ZONES))
    changes = clock_changes(zone)
    periods = regular_periods
    if changes and draw(st.booleans()):
        anchor = draw(st.sampled_from(changes))
        near = wall_times_near(anchor, ZoneInfo(zone))
        near_periods = st.builds(
            lambda begin, end: RegularPeriod(begin[0], begin[1], end[1]),
            st.sampled_from(near),
            st.one_of(st.sampled_from(near), st.just((0, "24:00"))),
        )
        periods = st.one_of(near_periods, near_periods, regular_periods)
    else:
        anchor = draw(minutes_between(FIRST, LAST))
    start = anchor - draw(st.integers(0, WINDOW)) * MINUTE
    instants = minutes_between(start - timedelta(days=1), start + (WINDOW + 24 * 60) * MINUTE)
    exceptional = st.builds(
        lambda begin, length: ExceptionalPeriod(begin, begin + length * MINUTE), instants, st.integers(1, 2 * 24 * 60)
    )
    spec = HoursSpec(
        twentyfourseven=draw(st.integers(0, 5)) == 0,
        regular_hours=tuple(draw(st.lists(periods, max_size=8))),
        exceptional_openings=tuple(draw(st.lists(exceptional, max_size=3))),
        exceptional_closings=tuple(draw(st.lists(exceptional, max_size=3))),
    )
    return compile_schedule(zone, spec), start


def expected_states(schedule: Schedule, start: datetime) -> list[bool]:
    return oracle(schedule.timezone, schedule.spec, start, WINDOW)


# -- properties -------------------------------------------------------------------------------


@PROPERTY
@given(cases())
def test_is_open_agrees_with_the_minute_by_minute_oracle(case: tuple[Schedule, datetime]) -> None:
    schedule, start = case
    expected = expected_states(schedule, start)
    actual = [schedule.is_open(start + i * MINUTE) for i in range(WINDOW)]
    mismatches = [start + i * MINUTE for i in range(WINDOW) if actual[i] != expected[i]]
    assert not mismatches, f"first mismatch at {mismatches[0]}"


@PROPERTY
@given(cases())
def test_next_change_is_the_first_instant_where_open_flips(case: tuple[Schedule, datetime]) -> None:
    schedule, start = case
    expected = expected_states(schedule, start)
    window_end = start + WINDOW * MINUTE
    next_flip: int | None = None  # index of the first minute after i whose state differs
    for i in reversed(range(WINDOW)):
        change = schedule.next_change(start + i * MINUTE)
        if next_flip is None:
            assert change is None or change >= window_end, f"no change before {window_end}, got {change}"
        else:
            assert change == start + next_flip * MINUTE, f"after {start + i * MINUTE}"
        if i and expected[i - 1] != expected[i]:
            next_flip = i
    # A change beyond the window must still be a real flip.
    change = schedule.next_change(window_end - MINUTE)
    if change is not None and change >= window_end:
        before, after = oracle(schedule.timezone, schedule.spec, change - MINUTE, 2)
        assert before != after


@PROPERTY
@given(cases(), st.randoms(use_true_random=False))
def test_covers_holds_iff_open_at_every_minute_of_the_interval(
    case: tuple[Schedule, datetime], rnd: random.Random
) -> None:
    schedule, start = case
    expected = expected_states(schedule, start)
    closed_before = [0]  # closed_before[i]: closed minutes among the first i
    for state in expected:
        closed_before.append(closed_before[-1] + (not state))
    flips = [i for i in range(1, WINDOW) if expected[i] != expected[i - 1]]
    for _ in range(150):  # slots that start and end on flips, just around them, or anywhere
        a = rnd.choice(flips) if flips and rnd.random() < 0.5 else rnd.randrange(WINDOW)
        following = next((f for f in flips if f > a), None)
        ends = [a + 1, rnd.randrange(a + 1, WINDOW + 1)]
        if following is not None:
            ends += [following, following + 1]
        b = rnd.choice(ends)
        slot = start + a * MINUTE, start + b * MINUTE
        assert schedule.covers(*slot) == (closed_before[b] == closed_before[a]), f"slot {slot}"


@PROPERTY
@given(cases())
def test_current_interval_spans_from_the_last_flip_to_the_next(case: tuple[Schedule, datetime]) -> None:
    schedule, start = case
    expected = expected_states(schedule, start)
    flips = [i for i in range(1, WINDOW) if expected[i] != expected[i - 1]]
    for i in [0, WINDOW - 1, *flips, *(f - 1 for f in flips)]:
        instant = start + i * MINUTE
        interval = schedule.current_interval(instant)
        if not expected[i]:
            assert interval is None
            continue
        assert interval is not None
        begin, end = interval
        earlier = [f for f in flips if f <= i]
        if earlier:
            assert begin == start + earlier[-1] * MINUTE
        elif begin is not None:  # opened before the window: check that it really opened then
            assert begin <= start
            assert oracle(schedule.timezone, schedule.spec, begin - MINUTE, 2) == [False, True]
        later = [f for f in flips if f > i]
        assert end == (start + later[0] * MINUTE if later else schedule.next_change(instant))


@settings(max_examples=100, deadline=None)
@given(cases())
def test_hours_survive_a_round_trip_through_the_api_shape(case: tuple[Schedule, datetime]) -> None:
    spec = case[0].spec
    assume(not (spec.twentyfourseven and spec.regular_hours))  # the API refuses that combination
    assert parse_hours(spec.to_dict()) == spec
