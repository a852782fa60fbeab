"""Opening hours: the rules of DESIGN §4, case by case."""

from __future__ import annotations

import time as time_module
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.hours import (
    ExceptionalPeriod,
    HoursSpec,
    HoursValidationError,
    RegularPeriod,
    Schedule,
    compile_schedule,
    validate_timezone,
)
from app.hours_input import parse_hours

# 2024-06-03 is a Monday; June 2024 has no DST change anywhere used here.
MON, TUE, FRI, SAT, SUN = 1, 2, 5, 6, 7


def at(zone: str, *fields: int) -> datetime:
    return datetime(*fields, tzinfo=ZoneInfo(zone))  # type: ignore[misc]


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)  # type: ignore[misc]


def weekly(*periods: tuple[int, str, str], **extra: Any) -> dict[str, Any]:
    regular = [{"weekday": d, "period_begin": b, "period_end": e} for d, b, e in periods]
    return {"regular_hours": regular, **extra}


def schedule(zone: str, hours: dict[str, Any]) -> Schedule:
    return compile_schedule(zone, parse_hours(hours))


def validation_locs(payload: object) -> list[list[str | int]]:
    with pytest.raises(HoursValidationError) as caught:
        parse_hours(payload)
    return [e["loc"] for e in caught.value.errors]


# -- regular hours ----------------------------------------------------------------------------

OVERNIGHT = weekly((FRI, "22:00", "06:00"))


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        ((2024, 6, 7, 21, 59), False),  # Friday evening, before opening
        ((2024, 6, 7, 22, 0), True),
        ((2024, 6, 8, 0, 0), True),  # Saturday midnight
        ((2024, 6, 8, 3, 0), True),
        ((2024, 6, 8, 5, 59), True),
        ((2024, 6, 8, 6, 0), False),  # the end is excluded
        ((2024, 6, 7, 3, 0), False),  # Friday early morning belongs to Thursday: closed
        ((2024, 6, 9, 3, 0), False),  # Sunday early morning: Saturday has no period
    ],
)
def test_overnight_period_is_open_after_midnight_on_next_day(instant: tuple[int, ...], expected: bool) -> None:
    assert schedule("Europe/Berlin", OVERNIGHT).is_open(at("Europe/Berlin", *instant)) is expected


def test_overnight_period_changes_at_its_end_on_the_next_morning() -> None:
    hours = schedule("Europe/Berlin", OVERNIGHT)
    assert hours.next_change(at("Europe/Berlin", 2024, 6, 8, 3, 0)) == at("Europe/Berlin", 2024, 6, 8, 6, 0)
    assert hours.next_change(at("Europe/Berlin", 2024, 6, 8, 6, 0)) == at("Europe/Berlin", 2024, 6, 14, 22, 0)


def test_adjacent_periods_over_midnight_merge_into_one_interval() -> None:
    hours = schedule("Europe/Berlin", weekly((MON, "22:00", "24:00"), (TUE, "00:00", "06:00")))
    begin, end = hours.current_interval(at("Europe/Berlin", 2024, 6, 3, 23, 0)) or (None, None)
    assert (begin, end) == (at("Europe/Berlin", 2024, 6, 3, 22, 0), at("Europe/Berlin", 2024, 6, 4, 6, 0))
    assert hours.next_change(at("Europe/Berlin", 2024, 6, 3, 23, 59)) == at("Europe/Berlin", 2024, 6, 4, 6, 0)


def test_overlapping_periods_on_one_day_merge() -> None:
    hours = schedule("UTC", weekly((MON, "08:00", "12:00"), (MON, "10:00", "14:00")))
    assert hours.current_interval(utc(2024, 6, 3, 9, 0)) == (utc(2024, 6, 3, 8, 0), utc(2024, 6, 3, 14, 0))


@pytest.mark.parametrize("period", [("00:00", "00:00"), ("08:00", "08:00")])
def test_period_with_equal_begin_and_end_lasts_24_hours(period: tuple[str, str]) -> None:
    hours = schedule("UTC", weekly((MON, *period)))
    begin = datetime.combine(datetime(2024, 6, 3).date(), time.fromisoformat(period[0]), UTC)
    assert hours.current_interval(begin) == (begin, begin + timedelta(hours=24))


def test_period_ending_at_24_00_closes_at_midnight() -> None:
    hours = schedule("UTC", weekly((MON, "18:00", "24:00")))
    assert hours.next_change(utc(2024, 6, 3, 20, 0)) == utc(2024, 6, 4, 0, 0)


def test_station_without_hours_is_never_open() -> None:
    hours = schedule("UTC", {"twentyfourseven": False, "regular_hours": []})
    assert not hours.is_open(utc(2024, 6, 3, 12, 0))
    assert hours.next_change(utc(2024, 6, 3, 12, 0)) is None
    assert hours.current_interval(utc(2024, 6, 3, 12, 0)) is None


def test_regular_hours_covering_the_whole_week_never_change() -> None:
    hours = schedule("Europe/Berlin", weekly(*((day, "00:00", "00:00") for day in range(1, 8))))
    assert hours.is_open(at("Europe/Berlin", 2024, 3, 31, 3, 0))
    assert hours.next_change(at("Europe/Berlin", 2024, 3, 31, 3, 0)) is None
    assert hours.current_interval(at("Europe/Berlin", 2024, 3, 31, 3, 0)) == (None, None)


# -- exceptions -------------------------------------------------------------------------------

XMAS_CLOSING = {"period_begin": "2018-12-25T03:00:00Z", "period_end": "2018-12-25T05:00:00Z"}


def test_twentyfourseven_station_is_closed_during_an_exceptional_closing() -> None:
    hours = schedule("Europe/Berlin", {"twentyfourseven": True, "exceptional_closings": [XMAS_CLOSING]})
    assert hours.is_open(utc(2018, 12, 25, 2, 59))
    assert not hours.is_open(utc(2018, 12, 25, 3, 0))
    assert not hours.is_open(utc(2018, 12, 25, 4, 59))
    assert hours.is_open(utc(2018, 12, 25, 5, 0))
    assert hours.next_change(utc(2018, 12, 1)) == utc(2018, 12, 25, 3, 0)
    assert hours.next_change(utc(2018, 12, 25, 3, 0)) == utc(2018, 12, 25, 5, 0)
    assert hours.next_change(utc(2018, 12, 25, 5, 0)) is None
    assert hours.current_interval(utc(2018, 12, 1)) == (None, utc(2018, 12, 25, 3, 0))
    assert hours.current_interval(utc(2019, 1, 1)) == (utc(2018, 12, 25, 5, 0), None)


def test_exceptional_opening_opens_a_station_on_a_closed_day() -> None:
    # The OCPI example: weekdays 08:00-20:00, open on Saturday 2014-06-21 09:00-12:00 UTC,
    # closed all of Tuesday 2014-06-24 (UTC).
    hours = schedule(
        "Europe/Amsterdam",
        weekly(
            *((day, "08:00", "20:00") for day in range(1, 6)),
            exceptional_openings=[{"period_begin": "2014-06-21T09:00:00Z", "period_end": "2014-06-21T12:00:00Z"}],
            exceptional_closings=[{"period_begin": "2014-06-24T00:00:00Z", "period_end": "2014-06-25T00:00:00Z"}],
        ),
    )
    assert not hours.is_open(utc(2014, 6, 21, 8, 59))
    assert hours.is_open(utc(2014, 6, 21, 9, 0))
    assert not hours.is_open(utc(2014, 6, 21, 12, 0))
    assert not hours.is_open(utc(2014, 6, 24, 12, 0))
    assert hours.is_open(utc(2014, 6, 25, 6, 0))  # 08:00 CEST
    assert hours.next_change(utc(2014, 6, 23, 12, 0)) == utc(2014, 6, 23, 18, 0)
    assert hours.next_change(utc(2014, 6, 23, 18, 0)) == utc(2014, 6, 25, 6, 0)


def test_exceptional_closing_beats_an_overlapping_opening() -> None:
    window = {"period_begin": "2024-06-08T10:00:00+00:00", "period_end": "2024-06-08T12:00:00+00:00"}
    hours = schedule("UTC", {"regular_hours": [], "exceptional_openings": [window], "exceptional_closings": [window]})
    assert not hours.is_open(utc(2024, 6, 8, 11, 0))
    assert hours.next_change(utc(2024, 6, 8, 9, 0)) is None


def test_exceptional_opening_next_to_regular_hours_extends_the_interval() -> None:
    extra = [{"period_begin": "2024-06-03T12:00:00Z", "period_end": "2024-06-03T14:00:00Z"}]
    hours = schedule("UTC", weekly((MON, "08:00", "12:00"), exceptional_openings=extra))
    assert hours.next_change(utc(2024, 6, 3, 10, 0)) == utc(2024, 6, 3, 14, 0)


def test_next_change_finds_the_reopening_after_a_closure_of_two_years() -> None:
    closure = [{"period_begin": "2024-01-01T00:00:00Z", "period_end": "2026-01-01T00:00:00Z"}]
    hours = schedule("UTC", weekly(*((day, "08:00", "20:00") for day in range(1, 6)), exceptional_closings=closure))
    assert hours.next_change(utc(2023, 12, 29, 12, 0)) == utc(2023, 12, 29, 20, 0)  # a Friday
    assert hours.next_change(utc(2023, 12, 29, 20, 0)) == utc(2026, 1, 1, 8, 0)  # a Thursday
    assert not hours.is_open(utc(2025, 6, 2, 10, 0))
    assert hours.current_interval(utc(2026, 1, 1, 9, 0)) == (utc(2026, 1, 1, 8, 0), utc(2026, 1, 1, 20, 0))


def test_long_exceptional_opening_is_one_interval() -> None:
    opening = [{"period_begin": "2024-01-01T00:00:00Z", "period_end": "2025-01-01T00:00:00Z"}]
    hours = schedule("UTC", weekly((MON, "08:00", "20:00"), exceptional_openings=opening))
    assert hours.current_interval(utc(2024, 6, 1)) == (utc(2024, 1, 1), utc(2025, 1, 1))
    assert hours.day_hours(utc(2024, 6, 1, 12, 0)) == (time(0), time(23, 59, 59))
    assert hours.day_hours(utc(2024, 12, 31, 12, 0)) == (time(0), time(23, 59, 59))  # closes at midnight
    assert hours.day_hours(utc(2024, 1, 1, 12, 0)) == (time(0), time(23, 59, 59))


# -- daylight saving time ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "saturday", "real_hours"),
    [
        ("Europe/Berlin", (2024, 3, 30), 7),  # clocks go 02:00 -> 03:00 on Sunday
        ("Europe/Berlin", (2024, 10, 26), 9),  # clocks go 03:00 -> 02:00 on Sunday
        ("America/New_York", (2024, 3, 9), 7),
        ("America/New_York", (2024, 11, 2), 9),
    ],
)
def test_overnight_period_across_a_dst_change_lasts_7_or_9_real_hours(
    zone: str, saturday: tuple[int, int, int], real_hours: int
) -> None:
    hours = schedule(zone, weekly((SAT, "22:00", "06:00")))
    begin, end = hours.current_interval(at(zone, *saturday, 23, 0)) or (None, None)
    assert begin == at(zone, *saturday, 22, 0)
    assert begin is not None and end is not None
    assert end - begin == timedelta(hours=real_hours)
    assert end.astimezone(ZoneInfo(zone)).hour == 6


def test_period_beginning_in_the_spring_forward_gap_opens_when_the_gap_ends() -> None:
    hours = schedule("Europe/Berlin", weekly((SUN, "02:30", "04:00")))
    assert not hours.is_open(utc(2024, 3, 31, 0, 59))  # 01:59 CET
    assert hours.is_open(utc(2024, 3, 31, 1, 0))  # 03:00 CEST, the first instant after the gap
    assert hours.current_interval(utc(2024, 3, 31, 1, 30)) == (utc(2024, 3, 31, 1, 0), utc(2024, 3, 31, 2, 0))


def test_period_inside_the_gap_does_not_happen_that_day() -> None:
    hours = schedule("Europe/Berlin", weekly((SUN, "02:15", "02:45")))
    assert hours.next_change(utc(2024, 3, 30)) == at("Europe/Berlin", 2024, 4, 7, 2, 15)


def test_times_in_the_fall_back_fold_mean_their_first_occurrence() -> None:
    hours = schedule("Europe/Berlin", weekly((SUN, "00:00", "02:30"), (SUN, "02:45", "03:30")))
    assert hours.is_open(utc(2024, 10, 27, 0, 29))  # 02:29 CEST
    assert not hours.is_open(utc(2024, 10, 27, 0, 30))  # first 02:30: closed
    assert hours.is_open(utc(2024, 10, 27, 0, 45))  # first 02:45: open again
    assert hours.is_open(utc(2024, 10, 27, 1, 15))  # second 02:15 is after the first 02:45
    assert hours.next_change(utc(2024, 10, 27, 0, 45)) == utc(2024, 10, 27, 2, 30)  # 03:30 CET


@pytest.fixture
def los_angeles_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time_module.tzset()
    yield
    monkeypatch.undo()
    time_module.tzset()


@pytest.mark.usefixtures("los_angeles_process")
def test_station_zone_decides_and_the_process_zone_is_ignored() -> None:
    assert time_module.localtime(0).tm_hour == 16  # the process really runs on Los Angeles time
    hours = schedule("Asia/Kolkata", {"open_time": "08:00", "close_time": "22:00"})
    assert hours.is_open(utc(2024, 6, 10, 3, 0))  # 08:30 IST, 20:00 the day before in LA
    assert not hours.is_open(utc(2024, 6, 10, 17, 0))  # 22:30 IST, 10:00 in LA
    assert hours.next_change(utc(2024, 6, 10, 3, 0)) == utc(2024, 6, 10, 16, 30)
    assert hours.day_hours(utc(2024, 6, 10, 3, 0)) == (time(8, 0), time(22, 0))
    with pytest.raises(ValueError):
        hours.is_open(datetime(2024, 6, 10, 8, 30))


# -- covers and intervals ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ((2024, 6, 3, 20, 0), (2024, 6, 3, 22, 0), True),  # ends exactly at closing
        ((2024, 6, 3, 21, 0), (2024, 6, 3, 22, 30), False),  # runs past closing
        ((2024, 6, 3, 7, 30), (2024, 6, 3, 9, 0), False),  # starts before opening
        ((2024, 6, 3, 21, 0), (2024, 6, 4, 9, 0), False),  # spans the night
    ],
)
def test_covers_requires_every_instant_of_the_slot_to_be_open(
    start: tuple[int, ...], end: tuple[int, ...], expected: bool
) -> None:
    hours = schedule("Asia/Kolkata", {"open_time": "08:00", "close_time": "22:00"})
    assert hours.covers(at("Asia/Kolkata", *start), at("Asia/Kolkata", *end)) is expected


def test_covers_accepts_a_slot_across_merged_midnight_periods() -> None:
    hours = schedule("UTC", weekly((MON, "20:00", "24:00"), (TUE, "00:00", "02:00")))
    assert hours.covers(utc(2024, 6, 3, 23, 0), utc(2024, 6, 4, 1, 0))


def test_covers_refuses_a_slot_interrupted_by_an_exceptional_closing() -> None:
    closing = [{"period_begin": "2024-06-03T12:00:00Z", "period_end": "2024-06-03T12:15:00Z"}]
    hours = schedule("UTC", {"twentyfourseven": True, "exceptional_closings": closing})
    assert not hours.covers(utc(2024, 6, 3, 11, 0), utc(2024, 6, 3, 13, 0))
    assert hours.covers(utc(2024, 6, 3, 11, 0), utc(2024, 6, 3, 12, 0))


def test_covers_refuses_an_empty_or_reversed_interval() -> None:
    hours = schedule("UTC", {"twentyfourseven": True})
    with pytest.raises(ValueError):
        hours.covers(utc(2024, 6, 3, 12, 0), utc(2024, 6, 3, 12, 0))


@pytest.mark.parametrize("method", ["is_open", "next_change", "current_interval", "day_hours"])
def test_naive_instants_are_refused(method: str) -> None:
    hours = schedule("UTC", {"twentyfourseven": True})
    with pytest.raises(ValueError, match="timezone-aware"):
        getattr(hours, method)(datetime(2024, 6, 3, 12, 0))


# -- the hours to show for today --------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "instant", "expected"),
    [
        (weekly((MON, "08:00", "22:00")), (2024, 6, 3, 12, 0), (time(8), time(22))),
        (weekly((MON, "08:00", "22:00")), (2024, 6, 3, 23, 0), (time(8), time(22))),  # closed for the day
        (weekly((MON, "08:00", "22:00")), (2024, 6, 4, 12, 0), None),  # no hours on Tuesday
        (weekly((MON, "08:00", "12:00"), (MON, "14:00", "18:00")), (2024, 6, 3, 7, 0), (time(8), time(12))),
        (weekly((MON, "08:00", "12:00"), (MON, "14:00", "18:00")), (2024, 6, 3, 13, 0), (time(14), time(18))),
        (weekly((MON, "08:00", "12:00"), (MON, "14:00", "18:00")), (2024, 6, 3, 19, 0), (time(14), time(18))),
        (weekly((MON, "08:00", "24:00")), (2024, 6, 3, 9, 0), (time(8), time(23, 59, 59))),
        ({"twentyfourseven": True}, (2024, 6, 3, 9, 0), (time(0), time(23, 59, 59))),
        (weekly((FRI, "22:00", "06:00")), (2024, 6, 7, 12, 0), (time(22), time(6))),  # opens tonight
        (weekly((FRI, "22:00", "06:00")), (2024, 6, 8, 3, 0), (time(22), time(6))),  # still open from last night
        (weekly((FRI, "22:00", "06:00")), (2024, 6, 8, 12, 0), (time(22), time(6))),  # the day's last period
    ],
)
def test_day_hours_shows_the_period_that_matters_today(
    hours: dict[str, Any], instant: tuple[int, ...], expected: tuple[time, time] | None
) -> None:
    assert schedule("Asia/Kolkata", hours).day_hours(at("Asia/Kolkata", *instant)) == expected


def test_day_hours_is_none_on_a_day_closed_by_an_exceptional_closing() -> None:
    closing = [{"period_begin": "2024-06-02T18:30:00Z", "period_end": "2024-06-03T18:30:00Z"}]  # Monday, IST
    hours = schedule("Asia/Kolkata", {"open_time": "08:00", "close_time": "22:00", "exceptional_closings": closing})
    assert hours.day_hours(at("Asia/Kolkata", 2024, 6, 3, 12, 0)) is None
    assert hours.day_hours(at("Asia/Kolkata", 2024, 6, 4, 12, 0)) == (time(8), time(22))


def test_a_short_exceptional_closing_leaves_todays_regular_hours_and_is_shown_as_itself() -> None:
    # Bangalore, 09:00-21:00, closed 09:00-09:19 IST on Monday 3 June 2024 (03:30-03:49 UTC).
    closing = [{"period_begin": "2024-06-03T03:30:00Z", "period_end": "2024-06-03T03:49:00Z"}]
    hours = schedule("Asia/Kolkata", {"open_time": "09:00", "close_time": "21:00", "exceptional_closings": closing})
    noon = at("Asia/Kolkata", 2024, 6, 3, 12, 0)
    assert hours.day_hours(noon) == (time(9, 19), time(21))  # when it is actually open
    assert hours.regular_day_hours(noon) == (time(9), time(21))  # what "today" shows
    assert hours.day_exceptions(noon) == [("closing", time(9), time(9, 19))]
    assert hours.day_exceptions(at("Asia/Kolkata", 2024, 6, 4, 12, 0)) == []
    assert hours.regular_day_hours(at("Asia/Kolkata", 2024, 6, 4, 12, 0)) == (time(9), time(21))


def test_day_exceptions_are_clipped_to_the_day_and_in_order() -> None:
    closing = [{"period_begin": "2024-06-02T18:30:00Z", "period_end": "2024-06-04T18:30:00Z"}]  # Mon+Tue IST
    opening = [{"period_begin": "2024-06-05T16:30:00Z", "period_end": "2024-06-05T20:30:00Z"}]  # Wed 22:00-02:00
    hours = schedule(
        "Asia/Kolkata",
        {"open_time": "08:00", "close_time": "22:00", "exceptional_closings": closing, "exceptional_openings": opening},
    )
    assert hours.day_exceptions(at("Asia/Kolkata", 2024, 6, 3, 12, 0)) == [("closing", time(0), time(23, 59, 59))]
    assert hours.regular_day_hours(at("Asia/Kolkata", 2024, 6, 3, 12, 0)) == (time(8), time(22))
    assert hours.day_hours(at("Asia/Kolkata", 2024, 6, 3, 12, 0)) is None
    assert hours.day_exceptions(at("Asia/Kolkata", 2024, 6, 5, 12, 0)) == [("opening", time(22), time(23, 59, 59))]
    assert hours.day_exceptions(at("Asia/Kolkata", 2024, 6, 6, 12, 0)) == [("opening", time(0), time(2))]


# -- parsing and validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [{"open_time": "08:00", "close_time": "22:00"}, {"open_time": "08:00:00", "close_time": "22:00:00"}],
)
def test_shorthand_means_the_same_period_on_all_seven_days(payload: dict[str, str]) -> None:
    spec = parse_hours(payload)
    assert spec == HoursSpec(regular_hours=tuple(RegularPeriod(day, "08:00", "22:00") for day in range(1, 8)))


def test_shorthand_accepts_midnight_as_closing_time() -> None:
    spec = parse_hours({"open_time": "06:00:00", "close_time": "24:00:00"})
    assert spec.regular_hours[0] == RegularPeriod(1, "06:00", "24:00")


def test_hours_round_trip_through_the_api_shape() -> None:
    payload = weekly(
        (MON, "08:00", "20:00"),
        (FRI, "22:00", "06:00"),
        exceptional_openings=[{"period_begin": "2024-06-08T10:00:00+05:30", "period_end": "2024-06-08T12:00:00Z"}],
        exceptional_closings=[XMAS_CLOSING],
    )
    spec = parse_hours(payload)
    assert spec.to_dict() == {
        "twentyfourseven": False,
        "regular_hours": payload["regular_hours"],
        "exceptional_openings": [
            {"period_begin": "2024-06-08T04:30:00+00:00", "period_end": "2024-06-08T12:00:00+00:00"}
        ],
        "exceptional_closings": [
            {"period_begin": "2018-12-25T03:00:00+00:00", "period_end": "2018-12-25T05:00:00+00:00"}
        ],
    }
    assert parse_hours(spec.to_dict()) == spec
    assert spec.exceptional_openings[0] == ExceptionalPeriod(utc(2024, 6, 8, 4, 30), utc(2024, 6, 8, 12, 0))


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        (weekly((0, "08:00", "20:00")), ["hours", "regular_hours", 0, "weekday"]),
        (weekly((8, "08:00", "20:00")), ["hours", "regular_hours", 0, "weekday"]),
        (
            {"regular_hours": [{"weekday": "1", "period_begin": "08:00", "period_end": "20:00"}]},
            ["hours", "regular_hours", 0, "weekday"],
        ),
        (
            {"regular_hours": [{"weekday": True, "period_begin": "08:00", "period_end": "20:00"}]},
            ["hours", "regular_hours", 0, "weekday"],
        ),
        (weekly((MON, "25:00", "20:00")), ["hours", "regular_hours", 0, "period_begin"]),
        (weekly((MON, "24:00", "20:00")), ["hours", "regular_hours", 0, "period_begin"]),
        (weekly((MON, "8:00", "20:00")), ["hours", "regular_hours", 0, "period_begin"]),
        (weekly((MON, "08:00", "25:00")), ["hours", "regular_hours", 0, "period_end"]),
        ({"regular_hours": [{"weekday": 1, "period_begin": "08:00"}]}, ["hours", "regular_hours", 0, "period_end"]),
        (
            {"regular_hours": [{"weekday": 1, "period_begin": "08:00", "period_end": "09:00", "day": 2}]},
            ["hours", "regular_hours", 0, "day"],
        ),
        (weekly(*[(MON, "08:00", "09:00")] * 51), ["hours", "regular_hours"]),
        ({"regular_hours": "08:00-20:00"}, ["hours", "regular_hours"]),
        ({"twentyfourseven": "yes"}, ["hours", "twentyfourseven"]),
        (weekly((MON, "08:00", "20:00"), twentyfourseven=True), ["hours", "regular_hours"]),
        (
            {
                "regular_hours": [],
                "exceptional_closings": [
                    {"period_begin": "2024-06-08T12:00:00Z", "period_end": "2024-06-08T12:00:00Z"}
                ],
            },
            ["hours", "exceptional_closings", 0, "period_end"],
        ),
        (
            {
                "regular_hours": [],
                "exceptional_openings": [
                    {"period_begin": "2024-06-08T13:00:00Z", "period_end": "2024-06-08T12:00:00Z"}
                ],
            },
            ["hours", "exceptional_openings", 0, "period_end"],
        ),
        (
            {
                "regular_hours": [],
                "exceptional_closings": [{"period_begin": "2024-06-08T12:00:00", "period_end": "2024-06-08T13:00:00Z"}],
            },
            ["hours", "exceptional_closings", 0, "period_begin"],
        ),
        (
            {
                "regular_hours": [],
                "exceptional_closings": [{"period_begin": "tomorrow", "period_end": "2024-06-08T13:00:00Z"}],
            },
            ["hours", "exceptional_closings", 0, "period_begin"],
        ),
        ({"regular_hours": [], "exceptional_closings": [XMAS_CLOSING] * 201}, ["hours", "exceptional_closings"]),
        ({"open_time": "25:00", "close_time": "22:00"}, ["hours", "open_time"]),
        ({"open_time": "08:00:30", "close_time": "22:00"}, ["hours", "open_time"]),
        ({"open_time": "08:00"}, ["hours", "close_time"]),
        ({"open_time": "08:00", "close_time": "22:00", "twentyfourseven": True}, ["hours", "twentyfourseven"]),
        ({"regular_hours": [], "weekdays": []}, ["hours", "weekdays"]),
        (["08:00", "22:00"], ["hours"]),
    ],
)
def test_invalid_hours_are_reported_at_their_location(payload: object, loc: list[str | int]) -> None:
    assert validation_locs(payload) == [loc]


def test_all_field_errors_are_reported_together() -> None:
    payload = weekly(
        (9, "08:00", "20:00"),
        (MON, "08:00", "25:00"),
        exceptional_closings=[{"period_begin": "2024-06-08T12:00:00", "period_end": "2024-06-08T13:00:00Z"}],
    )
    assert validation_locs(payload) == [
        ["hours", "regular_hours", 0, "weekday"],
        ["hours", "regular_hours", 1, "period_end"],
        ["hours", "exceptional_closings", 0, "period_begin"],
    ]


def test_errors_carry_the_callers_location_prefix_and_a_message() -> None:
    with pytest.raises(HoursValidationError) as caught:
        parse_hours(weekly((MON, "25:00", "20:00")), loc_prefix=("body", "hours"))
    (error,) = caught.value.errors
    assert error["loc"] == ["body", "hours", "regular_hours", 0, "period_begin"]
    assert "HH:MM" in error["msg"]


@pytest.mark.parametrize("name", ["Asia/Kuala Lumpur", "", "local", "localtime", "Mars/Olympus_Mons", "../etc/passwd"])
def test_unknown_time_zones_are_refused(name: str) -> None:
    with pytest.raises(HoursValidationError) as caught:
        validate_timezone(name)
    assert caught.value.errors[0]["loc"] == ["timezone"]
    with pytest.raises(HoursValidationError):
        compile_schedule(name, HoursSpec(twentyfourseven=True))


@pytest.mark.parametrize("name", ["Asia/Kuala_Lumpur", "Asia/Kolkata", "America/New_York", "UTC"])
def test_iana_time_zones_are_accepted(name: str) -> None:
    assert validate_timezone(name) == name
