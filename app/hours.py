"""Opening hours: the one place that decides whether a station is open.

The model follows OCPI 2.2.1 ``Hours``: ``twentyfourseven``, weekly regular periods in the
station's wall-clock time, and exceptional openings and closings as UTC instants.

Rules (DESIGN §4):

* Everything is evaluated in the station's IANA zone; the process's own zone never matters.
* A regular period whose end is at or before its begin runs past midnight into the next day
  (Fri 22:00-06:00 is Fri 22:00 to Sat 06:00); ``HH:MM-HH:MM`` with equal times is 24 hours
  from begin; an end of ``24:00`` is the midnight that ends the day.
* A wall-clock time that falls in a DST gap means the first instant after the gap; one that falls
  in a fold means its first occurrence. Equivalently: a wall time W is reached at the first
  instant at which the station clock has shown W or later. An overnight 22:00-06:00 therefore
  lasts 7 real hours across spring-forward and 9 across fall-back.
* Exceptional closings beat exceptional openings, which beat regular hours; ``twentyfourseven``
  is open always except during closings. Intervals are half-open ``[begin, end)`` and touching or
  overlapping open intervals merge, so every reported change is a real open/closed flip.

Internally instants are integer microseconds since the Unix epoch. The timeline is cut into
UTC weeks; each week is computed on first use and cached on the ``Schedule`` as the state just
before the week plus the sorted flip instants inside it, so a query is a dict lookup and a bisect.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

MAX_REGULAR_PERIODS = 50
MAX_EXCEPTIONAL_PERIODS = 200  # per list (openings, closings)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY = timedelta(days=1)
_SECOND = 1_000_000
_BLOCK = 7 * 86_400 * _SECOND
_BLOCK_CACHE_SIZE = 64
_FOREVER = 1 << 62
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_ALWAYS, _NEVER, _WEEKLY = "always", "never", "weekly"

Loc = list[str | int]


def _minute_of_day(text: object, *, is_end: bool) -> int | None:
    """Minutes after midnight for ``HH:MM`` (``24:00`` only as an end), else None."""
    if is_end and text == "24:00":
        return 1440
    m = _HHMM.fullmatch(text) if isinstance(text, str) else None
    return int(m[1]) * 60 + int(m[2]) if m else None


def regular_period_problems(weekday: object, begin: object, end: object) -> dict[str, str]:
    problems = {}
    if type(weekday) is not int or not 1 <= weekday <= 7:
        problems["weekday"] = "must be an integer from 1 (Monday) to 7 (Sunday)"
    if _minute_of_day(begin, is_end=False) is None:
        problems["period_begin"] = "must be a time HH:MM between 00:00 and 23:59"
    if _minute_of_day(end, is_end=True) is None:
        problems["period_end"] = "must be a time HH:MM between 00:00 and 24:00"
    return problems


@dataclass(frozen=True, slots=True)
class RegularPeriod:
    weekday: int  # 1 = Monday ... 7 = Sunday
    begin: str  # "HH:MM", station-local
    end: str  # "HH:MM" or "24:00"; at or before begin means it ends on the next day

    def __post_init__(self) -> None:
        if problems := regular_period_problems(self.weekday, self.begin, self.end):
            raise ValueError("; ".join(f"{key} {msg}" for key, msg in problems.items()))


@dataclass(frozen=True, slots=True)
class ExceptionalPeriod:
    begin: datetime  # aware; stored in UTC
    end: datetime

    def __post_init__(self) -> None:
        for name in ("begin", "end"):
            value = getattr(self, name)
            if not isinstance(value, datetime) or value.utcoffset() is None:
                raise ValueError(f"{name} must be a timezone-aware datetime")
            object.__setattr__(self, name, value.astimezone(UTC))
        if not self.begin < self.end:
            raise ValueError("begin must be before end")


@dataclass(frozen=True, slots=True)
class HoursSpec:
    twentyfourseven: bool = False
    regular_hours: tuple[RegularPeriod, ...] = ()
    exceptional_openings: tuple[ExceptionalPeriod, ...] = ()
    exceptional_closings: tuple[ExceptionalPeriod, ...] = ()

    def __post_init__(self) -> None:
        for name in ("regular_hours", "exceptional_openings", "exceptional_closings"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def to_dict(self) -> dict[str, Any]:
        """The API shape, which ``app.hours_input.parse_hours`` accepts back unchanged."""

        def exceptional(periods: tuple[ExceptionalPeriod, ...]) -> list[dict[str, str]]:
            return [{"period_begin": p.begin.isoformat(), "period_end": p.end.isoformat()} for p in periods]

        return {
            "twentyfourseven": self.twentyfourseven,
            "regular_hours": [
                {"weekday": p.weekday, "period_begin": p.begin, "period_end": p.end} for p in self.regular_hours
            ],
            "exceptional_openings": exceptional(self.exceptional_openings),
            "exceptional_closings": exceptional(self.exceptional_closings),
        }


class HoursValidationError(ValueError):
    """Every problem found in the input; ``errors`` is usable as a 422 ``errors`` list."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones() - {"localtime", "Factory"})


def validate_timezone(name: str) -> str:
    """Return ``name`` if it is an IANA zone key; "local" and friends are refused on purpose."""
    if not isinstance(name, str) or name not in _zone_names():
        msg = "must be an IANA time zone name such as Europe/Berlin or Asia/Kolkata"
        raise HoursValidationError([{"loc": ["timezone"], "msg": msg}])
    return name


def compile_schedule(timezone: str, spec: HoursSpec) -> Schedule:
    return Schedule(validate_timezone(timezone), spec)


def _us(at: datetime) -> int:
    try:
        d = at - _EPOCH
    except TypeError:
        raise ValueError(f"expected a timezone-aware datetime, got {at!r}") from None
    return (d.days * 86_400 + d.seconds) * _SECOND + d.microseconds


def _utc(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((begin, end))
    return merged


def _subtract(spans: list[tuple[int, int]], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for begin, end in spans:
        for h_begin, h_end in holes:
            if h_end <= begin or h_begin >= end:
                continue
            if h_begin > begin:
                out.append((begin, h_begin))
            begin = max(begin, h_end)
            if begin >= end:
                break
        if begin < end:
            out.append((begin, end))
    return out


def _covers_whole_week(weekly: list[list[tuple[int, int]]]) -> bool:
    week = 7 * 1440
    spans: list[tuple[int, int]] = []
    for day, periods in enumerate(weekly):
        for begin, end in periods:
            begin, end = day * 1440 + begin, day * 1440 + end
            spans += [(begin, min(end, week))] + ([(0, end - week)] if end > week else [])
    return _merge(spans) == [(0, week)]


class Schedule:
    """A station's hours compiled for fast queries; build it with ``compile_schedule``."""

    __slots__ = (
        "_blocks",
        "_closings",
        "_exception_cover",
        "_exception_points",
        "_mode",
        "_openings",
        "_regular_only",
        "_tz",
        "_weekly",
        "spec",
        "timezone",
    )

    def __init__(self, timezone: str, spec: HoursSpec) -> None:
        self.timezone = timezone
        self.spec = spec
        self._tz = ZoneInfo(timezone)
        weekly: list[list[tuple[int, int]]] = [[] for _ in range(7)]
        for p in spec.regular_hours:
            begin = _minute_of_day(p.begin, is_end=False)
            end = _minute_of_day(p.end, is_end=True)
            assert begin is not None and end is not None  # RegularPeriod checked them
            weekly[p.weekday - 1].append((begin, end if end > begin else end + 1440))
        self._weekly = tuple(tuple(sorted(set(day))) for day in weekly)
        if spec.twentyfourseven or _covers_whole_week(weekly):
            self._mode = _ALWAYS
        else:
            self._mode = _WEEKLY if spec.regular_hours else _NEVER
        self._openings = _merge([(_us(p.begin), _us(p.end)) for p in spec.exceptional_openings])
        self._closings = _merge([(_us(p.begin), _us(p.end)) for p in spec.exceptional_closings])
        self._exception_points = sorted({t for s in self._openings + self._closings for t in s})
        self._exception_cover = _merge(self._openings + self._closings)
        self._blocks: dict[int, tuple[bool, list[int]]] = {}
        self._regular_only: Schedule | None = None

    def __repr__(self) -> str:
        return f"Schedule({self.timezone!r}, {self.spec!r})"

    # -- public queries -------------------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        return self._state(_us(at))

    def current_interval(self, at: datetime) -> tuple[datetime | None, datetime | None] | None:
        """The merged open interval containing ``at``, or None when closed.

        ``begin`` is None when the station has been open since forever (24/7 with no earlier
        closing) and ``end`` None when it stays open forever.
        """
        us = _us(at)
        if not self._state(us):
            return None
        begin, end = self._flip(us, False), self._flip(us, True)
        return (None if begin is None else _utc(begin)), (None if end is None else _utc(end))

    def next_change(self, after: datetime) -> datetime | None:
        """First instant strictly after ``after`` at which ``is_open`` flips, or None if never."""
        flip = self._flip(_us(after), True)
        return None if flip is None else _utc(flip)

    def covers(self, start: datetime, end: datetime) -> bool:
        """True iff open at every instant of ``[start, end)``; an empty interval is an error."""
        a, b = _us(start), _us(end)
        if b <= a:
            raise ValueError("end must be after start")
        if not self._state(a):
            return False
        flip = self._flip(a, True)
        return flip is None or flip >= b

    def open_intervals(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The open stretches of ``[start, end)``, merged and clipped to it, as UTC instants."""
        lo, hi = _us(start), _us(end)
        if hi <= lo:
            return []
        return [
            (_utc(max(lo, begin if begin is not None else lo)), _utc(min(hi, stop if stop is not None else hi)))
            for begin, stop in self._spans(lo, hi)
        ]

    def day_hours(self, at: datetime) -> tuple[time, time] | None:
        """The (open, close) pair to show for the station-local day containing ``at``.

        Candidates are the merged open intervals overlapping that day. We show the one open at
        ``at``, else the next one beginning later that day, else the day's last one; None when
        closed all day. An interval covering the whole day is (00:00, 23:59:59). Otherwise the
        ends are shown as local clock times: an overnight interval reads (22:00, 06:00), an end
        at the day's closing midnight reads 23:59:59, and a bound more than a day away (a long
        exceptional opening) is cut to 00:00 or 23:59:59.
        """
        us = _us(at)
        day = _utc(us).astimezone(self._tz).date()
        day_start, day_end = self._midnight(day), self._midnight(day + _DAY)
        spans = self._spans(day_start, day_end)
        if not spans:
            return None
        chosen = next((s for s in spans if _inside(s, us)), None)
        chosen = chosen or next((s for s in spans if s[0] is not None and s[0] > us), spans[-1])
        begin, end = chosen
        if (begin is None or begin <= day_start) and (end is None or end >= day_end):
            return time(0), time(23, 59, 59)
        opens = time(0) if begin is None or begin < self._midnight(day - _DAY) else self._clock(begin)
        if end is None or end == day_end or end > self._midnight(day + 2 * _DAY):
            closes = time(23, 59, 59)
        else:
            closes = self._clock(end)
        return opens, closes

    def regular_day_hours(self, at: datetime) -> tuple[time, time] | None:
        """``day_hours`` by the regular hours alone: a station's "today" as drivers know it. An
        exceptional closing of 09:00-09:19 must not turn a 09:00-21:00 day into 09:19-21:00; it is
        shown beside the day's hours instead (``day_exceptions``)."""
        if not self._openings and not self._closings:
            return self.day_hours(at)
        if self._regular_only is None:
            regular = HoursSpec(twentyfourseven=self.spec.twentyfourseven, regular_hours=self.spec.regular_hours)
            self._regular_only = Schedule(self.timezone, regular)
        return self._regular_only.day_hours(at)

    def day_exceptions(self, at: datetime) -> list[tuple[str, time, time]]:
        """The exceptional openings and closings that touch the station-local day containing
        ``at``, clipped to it and in order of their start: ``("closing", 09:00, 09:19)``. As in
        ``day_hours``, a period running past the day's end ends at 23:59:59."""
        day = _utc(_us(at)).astimezone(self._tz).date()
        day_start, day_end = self._midnight(day), self._midnight(day + _DAY)
        found = [
            (
                kind,
                time(0) if begin <= day_start else self._clock(begin),
                time(23, 59, 59) if end >= day_end else self._clock(end),
            )
            for kind, spans in (("opening", self._openings), ("closing", self._closings))
            for begin, end in spans
            if begin < day_end and end > day_start
        ]
        return sorted(found, key=lambda exception: exception[1])

    # -- internals ------------------------------------------------------------------------

    def _clock(self, us: int) -> time:
        return _utc(us).astimezone(self._tz).time()

    def _midnight(self, day: date) -> int:
        return self._resolve(datetime(day.year, day.month, day.day))

    def _resolve(self, wall: datetime) -> int:
        """The instant a station-local wall time stands for (gap: end of gap; fold: first)."""
        first = wall.replace(tzinfo=self._tz)
        second = first.replace(fold=1)
        before, after = first.utcoffset(), second.utcoffset()
        assert before is not None and after is not None
        if before >= after:  # unambiguous, or a fold where fold=0 is the first occurrence
            return _us(first)
        # In a gap fold=0 reads the wall time with the old offset and fold=1 with the new one,
        # so the transition lies in between; zone transitions fall on whole seconds.
        lo, hi = _us(second) // _SECOND, -(-_us(first) // _SECOND)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _utc(mid * _SECOND).astimezone(self._tz).utcoffset() == before:
                lo = mid
            else:
                hi = mid
        return hi * _SECOND

    def _regular(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """Resolved regular periods that may overlap ``[lo, hi)``.

        A period reaches at most to midnight two days after its start date, and the local date
        of ``hi`` can lag the dates already shown in a fold, hence the margins.
        """
        day = _utc(lo).astimezone(self._tz).date() - 2 * _DAY
        last = _utc(hi).astimezone(self._tz).date() + _DAY
        spans = []
        while day <= last:
            midnight = datetime(day.year, day.month, day.day)
            for begin, end in self._weekly[day.weekday()]:
                b = self._resolve(midnight + timedelta(minutes=begin))
                e = self._resolve(midnight + timedelta(minutes=end))
                if b < e:  # a period wholly inside a gap never happens
                    spans.append((b, e))
            day += _DAY
        return spans

    def _block(self, k: int) -> tuple[bool, list[int]]:
        """(open just before the block starts, sorted flip instants inside it) for UTC week k."""
        block = self._blocks.get(k)
        if block is not None:
            return block
        start = k * _BLOCK
        lo, hi = start - 1, start + _BLOCK
        if self._mode == _ALWAYS:
            spans = [(lo, hi)]
        elif self._mode == _NEVER:
            spans = []
        else:
            spans = self._regular(lo, hi)
        spans += [s for s in self._openings if s[0] < hi and s[1] > lo]
        holes = [s for s in self._closings if s[0] < hi and s[1] > lo]
        spans = _subtract(_merge(spans), holes)
        open_before = any(b <= lo < e for b, e in spans)
        flips = sorted(t for span in spans for t in span if start <= t < hi)
        if len(self._blocks) >= _BLOCK_CACHE_SIZE:
            del self._blocks[next(iter(self._blocks))]
        block = self._blocks[k] = (open_before, flips)
        return block

    def _state(self, us: int) -> bool:
        open_before, flips = self._blocks.get(us // _BLOCK) or self._block(us // _BLOCK)
        return open_before != bool(bisect_right(flips, us) & 1)

    def _flip(self, us: int, forward: bool) -> int | None:
        """The first flip after ``us`` (forward) or the last flip at or before it.

        Inside an exceptional period, or with no weekly hours at all, only exception boundaries
        can flip, so the walk jumps straight to the week holding the next one; a closure of
        months costs a few steps. Weekly hours flip every week otherwise, so the walk gives up
        three weeks beyond the last exception.
        """
        points, k = self._exception_points, us // _BLOCK
        edge = (max(us, points[-1]) if forward else min(us, points[0])) if points else us
        give_up = edge // _BLOCK + (3 if forward else -3)
        while True:
            flips = self._block(k)[1]
            i = bisect_right(flips, us)
            if forward and i < len(flips):
                return flips[i]
            if not forward and i:
                return flips[i - 1]
            k, first = (k + 1, (k + 1) * _BLOCK) if forward else (k - 1, k * _BLOCK - 1)
            if self._mode == _WEEKLY and not self._in_exception(first):
                if (k > give_up) if forward else (k < give_up):
                    return None
            elif forward:
                j = bisect_left(points, first)
                if j == len(points):
                    return None
                k = max(k, points[j] // _BLOCK)
            else:
                j = bisect_right(points, first)
                if j == 0:
                    return None
                k = min(k, points[j - 1] // _BLOCK)

    def _in_exception(self, us: int) -> bool:
        i = bisect_right(self._exception_cover, (us, _FOREVER)) - 1
        return i >= 0 and us < self._exception_cover[i][1]

    def _spans(self, lo: int, hi: int) -> list[tuple[int | None, int | None]]:
        """Merged open intervals overlapping ``[lo, hi)``, with their true (unclipped) ends."""
        out: list[tuple[int | None, int | None]] = []
        t, is_open = lo, self._state(lo)
        begin = self._flip(lo, False) if is_open else None
        while True:
            flip = self._flip(t, True)
            if is_open:
                out.append((begin, flip))
            if flip is None or flip >= hi:
                return out
            t, is_open, begin = flip, not is_open, flip


def _inside(span: tuple[int | None, int | None], us: int) -> bool:
    begin, end = span
    return (begin is None or begin <= us) and (end is None or us < end)
