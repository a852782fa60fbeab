"""Reading opening hours from API input: the OCPI-like object operators send, or the original
design's ``open_time``/``close_time`` shorthand. Every wrong field is reported at once, with its
location, so a 422 can name them all; what comes out is an ``app.hours.HoursSpec``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from app.clock import FIRST_YEAR, LAST_YEAR, YEARS
from app.hours import (
    MAX_EXCEPTIONAL_PERIODS,
    MAX_REGULAR_PERIODS,
    ExceptionalPeriod,
    HoursSpec,
    HoursValidationError,
    Loc,
    RegularPeriod,
    regular_period_problems,
)
from app.wire import parse_date_time

_HHMMSS = re.compile(r"([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?")

_OCPI_KEYS = ("twentyfourseven", "regular_hours", "exceptional_openings", "exceptional_closings")
_SHORTHAND_KEYS = ("open_time", "close_time", "exceptional_openings", "exceptional_closings")
_REGULAR_KEYS = ("weekday", "period_begin", "period_end")
_EXCEPTIONAL_KEYS = ("period_begin", "period_end")
_Report = Callable[[Loc, str], None]
#: ``{}`` would otherwise be a station that never opens, which nobody sending it meant to say.
SAY_WHEN_OPEN = (
    "must say when the station is open: twentyfourseven true, regular_hours (an empty list for no "
    "weekly opening), or open_time and close_time"
)


def parse_hours(payload: object, loc_prefix: Sequence[str | int] = ("hours",)) -> HoursSpec:
    """Validate an OCPI-like hours object or the ``open_time``/``close_time`` shorthand.

    The shorthand means the same period on all seven days. A document must say when the station
    opens (``SAY_WHEN_OPEN``). All field errors are collected before raising, each with its
    location under ``loc_prefix``.
    """
    errors: list[dict[str, Any]] = []

    def report(loc: Loc, msg: str) -> None:
        errors.append({"loc": [*loc_prefix, *loc], "msg": msg})

    shorthand = isinstance(payload, dict) and ("open_time" in payload or "close_time" in payload)
    hours = _object(payload, [], _SHORTHAND_KEYS if shorthand else _OCPI_KEYS, report, required=False)
    if hours is None:
        raise HoursValidationError(errors)

    twentyfourseven = hours.get("twentyfourseven", False)
    if not isinstance(twentyfourseven, bool):
        report(["twentyfourseven"], "must be true or false")
    regular = []
    if shorthand:
        opens, closes = (_shorthand_time(hours, key, report) for key in ("open_time", "close_time"))
        if opens and closes:
            regular = [RegularPeriod(day, opens, closes) for day in range(1, 8)]
    for i, item in enumerate(_list(hours, "regular_hours", MAX_REGULAR_PERIODS, report)):
        if (period := _object(item, ["regular_hours", i], _REGULAR_KEYS, report)) is not None:
            values: list[Any] = [period.get(key) for key in _REGULAR_KEYS]
            problems = regular_period_problems(*values)
            for key, msg in problems.items():
                if key in period:
                    report(["regular_hours", i, key], msg)
            if not problems:
                regular.append(RegularPeriod(*values))
    if twentyfourseven is True and hours.get("regular_hours"):
        report(["regular_hours"], "must be empty when twentyfourseven is true")
    if not shorthand and twentyfourseven is False and hours.get("regular_hours") is None:
        report([], SAY_WHEN_OPEN)

    exceptional: dict[str, list[ExceptionalPeriod]] = {"exceptional_openings": [], "exceptional_closings": []}
    for field, periods in exceptional.items():
        for i, item in enumerate(_list(hours, field, MAX_EXCEPTIONAL_PERIODS, report)):
            if (period := _object(item, [field, i], _EXCEPTIONAL_KEYS, report)) is None:
                continue
            begin, end = bounds = [_instant(period.get(key)) for key in _EXCEPTIONAL_KEYS]
            for key, bound in zip(_EXCEPTIONAL_KEYS, bounds, strict=True):
                if key in period and bound is None:
                    report([field, i, key], f"must be an ISO 8601 date-time with a UTC offset, {YEARS}")
            if begin and end and begin >= end:
                report([field, i, "period_end"], "must be after period_begin")
            elif begin and end:
                periods.append(ExceptionalPeriod(begin, end))

    if errors:
        raise HoursValidationError(errors)
    return HoursSpec(
        twentyfourseven is True,
        tuple(regular),
        tuple(exceptional["exceptional_openings"]),
        tuple(exceptional["exceptional_closings"]),
    )


def _object(
    value: object, loc: Loc, keys: tuple[str, ...], report: _Report, *, required: bool = True
) -> dict[Any, Any] | None:
    """``value`` if it is a JSON object, after reporting its unknown (and missing) keys."""
    if not isinstance(value, dict):
        report(loc, "must be an object")
        return None
    for key in value:
        if key not in keys:
            report([*loc, str(key)], "unknown field")
    for key in keys if required else ():
        if key not in value:
            report([*loc, key], "field required")
    return value


def _list(hours: dict[Any, Any], key: str, limit: int, report: _Report) -> list[Any]:
    value = hours.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > limit:
        report([key], f"must be a list of at most {limit} periods")
        return []
    return value


def _shorthand_time(hours: dict[Any, Any], key: str, report: _Report) -> str | None:
    """``HH:MM`` for a shorthand time, which may also be ``HH:MM:SS`` on a whole minute."""
    text = hours.get(key)
    m = _HHMMSS.fullmatch(text) if isinstance(text, str) else None
    if m and m[3] in (None, "00"):
        return f"{m[1]}:{m[2]}"
    if key == "close_time" and text in ("24:00", "24:00:00"):
        return "24:00"
    report([key], "field required" if text is None else "must be a time HH:MM or HH:MM:SS from 00:00 to 23:59")
    return None


def _instant(value: object) -> datetime | None:
    if isinstance(value, str):
        try:
            value = parse_date_time(value)
        except ValueError:
            return None
    if isinstance(value, datetime) and value.utcoffset() is not None and FIRST_YEAR <= value.year <= LAST_YEAR:
        return value.astimezone(UTC)
    return None
