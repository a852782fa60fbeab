"""Latency of the opening-hours queries that every status, booking and payment request makes.

    python bench/bench_hours.py            # print the table
    python bench/bench_hours.py --record   # also write the "Opening hours" section of bench/RESULTS.md

Each figure is the median, over repeated runs, of the mean time per call within a run. Queries
cycle through instants spread over several weeks, so week boundaries and cache lookups are part
of what is measured; "warm" means the weeks queried were computed once before timing.
A reference measured in the same run (one ``datetime.astimezone`` into the station's zone, the
least any zone-aware answer costs) is printed next to the figures, as these machines are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.hours import HoursSpec, compile_schedule  # noqa: E402
from app.hours_input import parse_hours  # noqa: E402
from bench.common import machine, record_section  # noqa: E402

TARGETS_US = {"is_open": 5.0, "next_change": 50.0, "compile_schedule": 200.0}
REPEAT = 15
SECTION = "## Opening hours"

SCHEDULES: dict[str, tuple[str, dict[str, object], datetime]] = {
    "weekly 08:00-22:00 (Kolkata)": (
        "Asia/Kolkata",
        {"open_time": "08:00", "close_time": "22:00"},
        datetime(2024, 6, 3, tzinfo=UTC),
    ),
    "overnight 20:00-06:00 (Kolkata)": (
        "Asia/Kolkata",
        {"open_time": "20:00", "close_time": "06:00"},
        datetime(2024, 6, 3, tzinfo=UTC),
    ),
    "24/7 with 20 closings (Berlin)": (
        "Europe/Berlin",
        {
            "twentyfourseven": True,
            "exceptional_closings": [
                {
                    "period_begin": (datetime(2024, 6, 1, 2, tzinfo=UTC) + timedelta(days=3 * i)).isoformat(),
                    "period_end": (datetime(2024, 6, 1, 5, tzinfo=UTC) + timedelta(days=3 * i)).isoformat(),
                }
                for i in range(20)
            ],
        },
        datetime(2024, 6, 3, tzinfo=UTC),
    ),
    "weekdays + Sat overnight over DST (Berlin)": (
        "Europe/Berlin",
        {
            "regular_hours": [
                *({"weekday": d, "period_begin": "07:00", "period_end": "19:00"} for d in range(1, 6)),
                {"weekday": 6, "period_begin": "22:00", "period_end": "06:00"},
            ],
            "exceptional_openings": [
                {"period_begin": "2024-03-31T10:00:00+02:00", "period_end": "2024-03-31T14:00:00+02:00"}
            ],
        },
        datetime(2024, 3, 25, tzinfo=UTC),
    ),
    "weekdays, closed for 6 months (Berlin)": (
        "Europe/Berlin",
        {
            "regular_hours": [{"weekday": d, "period_begin": "07:00", "period_end": "19:00"} for d in range(1, 6)],
            "exceptional_closings": [
                {"period_begin": "2024-05-01T00:00:00+02:00", "period_end": "2024-11-01T00:00:00+01:00"}
            ],
        },
        datetime(2024, 6, 3, tzinfo=UTC),
    ),
}


def per_call_us(call: Callable[[], object], number: int) -> float:
    runs = timeit.Timer(call).repeat(repeat=REPEAT, number=number)
    return statistics.median(runs) / number * 1e6


def cycling(items: list[datetime], fn: Callable[[datetime], object]) -> Callable[[], object]:
    """A zero-argument call that applies ``fn`` to the next item each time."""
    state = {"i": 0}
    n = len(items)

    def call() -> object:
        i = state["i"] = (state["i"] + 1) % n
        return fn(items[i])

    return call


def measure_one(zone: str, payload: dict[str, object], base: datetime) -> dict[str, float]:
    spec: HoursSpec = parse_hours(payload)
    schedule = compile_schedule(zone, spec)
    instants = [base + timedelta(minutes=37 * i) for i in range(1000)]  # about 26 days
    for at in instants:  # compute the weeks queried, as a running server would have
        schedule.next_change(at)
    tz = ZoneInfo(zone)
    return {
        "reference": per_call_us(cycling(instants, lambda at: at.astimezone(tz)), 20_000),
        "is_open": per_call_us(cycling(instants, schedule.is_open), 20_000),
        "next_change": per_call_us(cycling(instants, schedule.next_change), 20_000),
        "compile_schedule": per_call_us(lambda: compile_schedule(zone, spec), 2_000),
        "compile + first is_open": per_call_us(lambda: compile_schedule(zone, spec).is_open(base), 500),
    }


def table(rows: dict[str, dict[str, float]]) -> str:
    columns = list(next(iter(rows.values())))
    lines = [
        "| schedule | " + " | ".join(f"{c} (µs)" for c in columns) + " |",
        "|" + " --- |" * (len(columns) + 1),
        *(f"| {name} | " + " | ".join(f"{row[c]:.2f}" for c in columns) + " |" for name, row in rows.items()),
        "",
    ]
    for key, target in TARGETS_US.items():
        worst = max(row[key] for row in rows.values())
        ratio = max(row[key] / row["reference"] for row in rows.values())
        verdict = "met" if worst <= target else "MISSED"
        lines.append(
            f"- `{key}`: worst median {worst:.2f} µs, target ≤ {target:g} µs: **{verdict}**; "
            f"at most {ratio:.1f} times the reference of its row"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="write the results into bench/RESULTS.md")
    args = parser.parse_args()
    results = table({name: measure_one(*case) for name, case in SCHEDULES.items()})
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    report = (
        f"`python bench/bench_hours.py`, {when}; {machine()}.\n\n"
        "Median over 15 runs of the mean time per call; queries cycle over 1,000 instants spread over "
        "26 days (weeks computed beforehand, as in a running server). `reference` is one "
        "`datetime.astimezone` into the station's zone, measured in the same run.\n\n" + results
    )
    print(report)
    if args.record:
        print(f"\nrecorded in {record_section(SECTION, report)}")


if __name__ == "__main__":
    main()
