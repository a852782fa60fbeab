"""What every benchmark shares: where the repository is, what machine ran it, and how its figures
replace its own section of bench/RESULTS.md without touching the others."""

from __future__ import annotations

import os
import platform
import re
import secrets
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"


def machine() -> str:
    model = "unknown CPU"
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        model = match[1].strip() if match else model
    except OSError:
        pass
    return f"{os.cpu_count()} cores (nproc), {model}, Python {platform.python_version()}"


def record_section(heading: str, body: str) -> Path:
    """Replace the ``heading`` section of RESULTS.md with ``body`` (or append it)."""
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    section = f"{heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(current):
        updated = pattern.sub(lambda _: section + "\n", current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(updated.rstrip("\n") + "\n")
    return RESULTS


def app_environment(database_url: str, redis_url: str) -> dict[str, str]:
    """The environment of a benchmarked Chargeslot process: a fresh database, its own Redis prefix,
    and no background tasks of the web process getting in the measurement's way."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": f"bench-{secrets.token_hex(4)}",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "COOKIE_SECURE": "false",
        "RUN_BACKGROUND_TASKS": "false",
    }


async def migrate(env: dict[str, str]) -> None:
    """``python -m app migrate`` on the benchmark's database, as a deployment runs it."""
    import asyncio
    import sys

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "migrate", cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL
    )
    if await process.wait() != 0:
        raise RuntimeError("python -m app migrate failed")


def main_recording(doc: str | None, section: str, run: Any, report: Any) -> None:
    """A benchmark's command line: run, print the report, and with ``--record`` keep it in RESULTS.md."""
    import argparse
    import asyncio

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    parser.add_argument("--record", action="store_true", help="write the results into bench/RESULTS.md")
    args = parser.parse_args()
    text = report(asyncio.run(run()))
    print(text)
    if args.record:
        print(f"\nrecorded in {record_section(section, text)}")
